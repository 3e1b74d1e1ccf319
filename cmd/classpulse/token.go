package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/classpulse/classpulse/dashboard"
	"github.com/classpulse/classpulse/internal/config"
)

func init() {
	register("token", "issue a signed dashboard sign-in token: classpulse token --role instructor --class C1 --ttl 8h; revoke one: classpulse token revoke --jti ID | --sub USER", runToken)
}

func runToken(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "revoke" {
		return runTokenRevoke(ctx, args[1:], os.Stdout)
	}
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	role := fs.String("role", "", "admin, instructor, counsellor, student or guardian")
	sub := fs.String("sub", "", "the user's id (for --role student, the student id; default: the role name)")
	name := fs.String("name", "", "display name")
	var classes, students, units config.List
	fs.Var(&classes, "class", "classes (session or course ids) an instructor teaches, comma-separated")
	fs.Var(&students, "students", "students a counsellor is assigned, or a guardian's child, comma-separated")
	fs.Var(&units, "units", "teaching units a counsellor serves, comma-separated")
	ttl := fs.Duration("ttl", 8*time.Hour, "how long the token is valid")
	keys := fs.String("token-keys", "", "signing keys kid=hexsecret[,kid2=…]; the first signs (the dashboard's --token-keys)")
	newKey := fs.Bool("new-key", false, "print a fresh signing key for --token-keys and exit")
	base := fs.String("url", "", "if set, print a sign-in link on this dashboard base URL (e.g. http://127.0.0.1:8080)")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	if *newKey {
		_, spec, err := dashboard.NewKeys("k" + time.Now().UTC().Format("20060102"))
		if err != nil {
			return err
		}
		fmt.Println(spec)
		return nil
	}
	if *keys == "" {
		return errors.New("no signing key: give --token-keys (or CLASSPULSE_TOKEN_KEYS), the same as the dashboard's; `classpulse token --new-key` makes one")
	}
	k, err := dashboard.ParseKeys(*keys)
	if err != nil {
		return err
	}
	if *ttl <= 0 || *ttl > 90*24*time.Hour {
		return fmt.Errorf("--ttl %v: want between 1s and 90 days", *ttl)
	}
	if *sub == "" {
		*sub = *role
	}
	now := time.Now()
	tok, err := dashboard.IssueToken(k, dashboard.Claims{
		Subject: *sub, Role: dashboard.Role(*role), Name: *name, Classes: classes, Students: students, Units: units,
		IssuedAt: now.Unix(), Expires: now.Add(*ttl).Unix(),
	})
	if err != nil {
		return err
	}
	fmt.Println(tok)
	if *base != "" {
		fmt.Fprintf(os.Stderr, "sign-in link: %s/login?token=%s\n", *base, tok)
	}
	return nil
}

const tokenRevokeSummary = `revoke a dashboard token (--jti, the token id in the audit log) or every token a user
holds now (--sub; tokens issued afterwards work, e.g. for the user's new role). Every
dashboard replica refuses the token at once (401) and closes its WebSockets within a
minute. The list lives in Redis ({auth}:revoked), so give the dashboards' --redis.`

// runTokenRevoke stores a revocation in Redis for every dashboard replica.
func runTokenRevoke(ctx context.Context, args []string, out io.Writer) error {
	fs := newFlagSet("token revoke", tokenRevokeSummary)
	var in infra
	in.register(fs, false, true)
	jti := fs.String("jti", "", "id (jti) of the token to revoke")
	sub := fs.String("sub", "", "user whose tokens issued until now are revoked")
	reason := fs.String("reason", "", "why, kept with the revocation")
	by := fs.String("by", "", `who revokes, kept with the revocation (default "cli:<os user>")`)
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	if *by == "" {
		*by = "cli:" + osUser()
	}
	rev := dashboard.Revocation{JTI: *jti, Subject: *sub, By: *by, Reason: *reason}
	if err := rev.Validate(); err != nil {
		return fmt.Errorf("token revoke: %w", err)
	}
	rdb := in.redisClient()
	defer rdb.Close()
	rev, err := dashboard.Revoke(ctx, rdb, rev, time.Now())
	if err != nil {
		return fmt.Errorf("token revoke: %w", err)
	}
	what := "token " + rev.JTI
	if rev.Subject != "" {
		what = "every token of " + rev.Subject + " issued until " + time.Unix(rev.At, 0).UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(out, "revoked %s (kept until %s)\n", what, time.Unix(rev.Until, 0).UTC().Format(time.RFC3339))
	return nil
}
