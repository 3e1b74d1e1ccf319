package dashboard

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/classpulse/classpulse/stream"
)

// Principal is an authenticated user for one request or connection.
type Principal struct {
	Claims
}

// CanSeeClass reports whether p may watch the live grid of class (a session
// or course id): admins and the class's instructors.
func (p *Principal) CanSeeClass(class string) bool {
	switch p.Role {
	case RoleAdmin:
		return true
	case RoleInstructor:
		return slices.Contains(p.Classes, class)
	}
	return false
}

// CanSeeStudent reports whether p may open student's page. unit is the
// student's teaching unit if known (empty otherwise). Instructors see the
// students of their classes through the grid and live signals only, so
// they pass here only for a student currently in one of their classes
// (inClass).
func (p *Principal) CanSeeStudent(student, unit string, inClass bool) bool {
	switch p.Role {
	case RoleAdmin:
		return true
	case RoleCounsellor:
		return slices.Contains(p.Students, student) || (unit != "" && slices.Contains(p.Units, unit))
	case RoleStudent:
		return p.Subject == student
	case RoleGuardian:
		return slices.Contains(p.Students, student)
	case RoleInstructor:
		return inClass
	}
	return false
}

// CanWorkOn reports whether p may record help-loop steps on a student's
// warnings: admins and the student's counsellors.
func (p *Principal) CanWorkOn(student, unit string) bool {
	switch p.Role {
	case RoleAdmin:
		return true
	case RoleCounsellor:
		return slices.Contains(p.Students, student) || (unit != "" && slices.Contains(p.Units, unit))
	}
	return false
}

// liveSignal reports whether a category is a live engagement signal, which
// only instructors (and admins) ever see.
func liveSignal(category string) bool {
	return category == stream.CategoryEngagement || category == stream.CategoryClass
}

// warningVisible decides whether p sees a warning on the live feed. unit is
// the student's unit if known; released says whether staff have confirmed
// the warning to the student (only consulted for students and guardians).
func (p *Principal) warningVisible(w *stream.Warning, unit string, released func() bool) bool {
	switch p.Role {
	case RoleAdmin:
		return true
	case RoleInstructor:
		return (w.Session != "" && slices.Contains(p.Classes, w.Session)) || (w.Course != "" && slices.Contains(p.Classes, w.Course))
	case RoleCounsellor:
		return !liveSignal(w.Category) && w.Student != "" && p.CanWorkOn(w.Student, unit)
	case RoleStudent, RoleGuardian:
		if liveSignal(w.Category) || w.Student == "" || !p.CanSeeStudent(w.Student, "", false) {
			return false
		}
		return released()
	}
	return false
}

// originAllowed checks the Origin header of a browser request. A request
// without Origin is not from a browser page (curl, the lead's test client,
// the bench) and is allowed: the token is what authenticates it. With an
// Origin, it must be the server's own origin or a configured one.
func originAllowed(r *http.Request, allowed []string) (bool, string) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true, ""
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false, "origin header is not a URL"
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true, ""
	}
	for _, a := range allowed {
		if strings.EqualFold(strings.TrimSuffix(a, "/"), origin) {
			return true, ""
		}
	}
	return false, "origin " + origin + " is not allowed"
}

// channelRules decide, per WebSocket channel kind, why p may not subscribe
// to the channel with argument arg ("" when allowed). A kind the client
// parser accepts but that has no rule here is refused, and the
// authorisation matrix test needs a row for every kind listed.
var channelRules = map[string]func(ctx context.Context, s *Server, p *Principal, arg string) string{
	// Everyone may follow the warnings feed; each warning is filtered by
	// warningVisible before it is sent.
	chanWarnings: func(context.Context, *Server, *Principal, string) string { return "" },
	chanClass: func(_ context.Context, _ *Server, p *Principal, class string) string {
		if !p.CanSeeClass(class) {
			return "class " + class + " is not one of your classes"
		}
		return ""
	},
	chanStudent: func(ctx context.Context, s *Server, p *Principal, student string) string {
		if _, ok := s.studentAccess(ctx, p, student); !ok {
			return "student " + student + " is not in your scope"
		}
		return ""
	},
}
