package notify

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/classpulse/classpulse/ingest"
	"github.com/classpulse/classpulse/stream"
)

// Channels a route may use.
const (
	ChannelEmail    = "email"
	ChannelWebhook  = "webhook"
	ChannelWeCom    = "wecom"
	ChannelDingTalk = "dingtalk"
	ChannelFeishu   = "feishu"
)

// StateFollowUp is the state of a help-plan reminder (package helploop):
// the warning as it stands, with the reminder as its reason. Routes list it
// among their states like the warning states.
const StateFollowUp = "follow_up"

// routeStates are the states a route may list.
var routeStates = append(append([]string{}, stream.WarningStates...), StateFollowUp)

// Channels lists every channel.
var Channels = []string{ChannelEmail, ChannelWebhook, ChannelWeCom, ChannelDingTalk, ChannelFeishu}

// Route sends warnings that match it to roles or fixed addresses over one
// channel. A warning may match several routes; each (channel, address) gets
// it once.
type Route struct {
	// Categories the route covers. Default: all.
	Categories []string `json:"categories,omitempty"`
	// MinLevel is the lowest level covered. Default "yellow".
	MinLevel string `json:"min_level,omitempty"`
	// States covered: warning states and follow_up (help-plan reminders).
	// Default raised, escalated and follow_up (not cleared).
	States []string `json:"states,omitempty"`
	// Roles resolved per student from the roster: student, guardian
	// (minors only, always), counsellor, class_teacher. Their contact's
	// email (channel email) or webhook (channel webhook) is used.
	Roles []string `json:"roles,omitempty"`
	// To are fixed addresses: e-mail addresses for email, URLs for the
	// webhook and group-bot channels (a bot is a group's, not a person's).
	To []string `json:"to,omitempty"`
	// Channel is one of Channels. Required.
	Channel string `json:"channel"`
	// Digest collects messages per address and sends one summary every
	// DigestInterval instead of one message per warning.
	Digest bool `json:"digest,omitempty"`
	// IgnoreQuietHours sends at once even in quiet hours (e.g. red warnings
	// to the duty counsellor's group). Default false.
	IgnoreQuietHours bool `json:"ignore_quiet_hours,omitempty"`
}

// Config configures a Dispatcher. Brokers and at least one route are
// required; every other field documents its default.
type Config struct {
	// Brokers are the Kafka bootstrap host:port pairs. Required.
	Brokers []string `json:"-"`
	// KafkaTLS, when set, makes the warnings consumer speak TLS to Kafka
	// (--kafka-tls*). Default plain TCP.
	KafkaTLS *tls.Config `json:"-"`
	// Group is the consumer group. Default "classpulse-notify".
	Group string `json:"group,omitempty"`
	// Routes, in any order. Required: at least one.
	Routes []Route `json:"routes"`
	// QuietStart and QuietEnd ("22:00", "07:00") bound the quiet hours in
	// Location; messages due then are held until QuietEnd. Default none.
	QuietStart string `json:"quiet_start,omitempty"`
	QuietEnd   string `json:"quiet_end,omitempty"`
	// Timezone names the location of quiet hours. Default "UTC".
	Timezone string `json:"timezone,omitempty"`
	// DigestInterval is how often digests go out. Default 1h.
	DigestInterval Duration `json:"digest_interval,omitempty"`
	// SMTP is the mail relay.
	SMTP SMTPConfig `json:"smtp"`
	// WebhookSecret signs generic webhooks (HMAC-SHA256). Required when a
	// route uses channel webhook.
	WebhookSecret string `json:"-"`
	// BotSecrets maps a group-bot URL to its signing secret (DingTalk
	// "加签", Feishu "签名校验"). Default none: bots without signing.
	BotSecrets map[string]string `json:"-"`
	// MaxAttempts is how many times one delivery is tried before it is
	// dead-lettered. Default 5.
	MaxAttempts int `json:"max_attempts,omitempty"`
	// BackoffMin and BackoffMax bound the exponential backoff between
	// attempts. Default 1s and 1m.
	BackoffMin Duration `json:"backoff_min,omitempty"`
	BackoffMax Duration `json:"backoff_max,omitempty"`
	// HTTPTimeout bounds one webhook call. Default 10s.
	HTTPTimeout Duration `json:"http_timeout,omitempty"`
	// FlushEvery is how often held and digest messages are checked. Default 5s.
	FlushEvery Duration `json:"flush_every,omitempty"`
	// DashboardURL, when set, links each message to the student's page.
	DashboardURL string `json:"dashboard_url,omitempty"`

	loc                  *time.Location
	quietStart, quietEnd int // minutes after midnight, -1 for none
}

// SMTPConfig is the mail relay. Addr and From are required when a route
// uses channel email.
type SMTPConfig struct {
	// Addr is host:port of the relay.
	Addr string `json:"addr"`
	// From is the sender address.
	From string `json:"from"`
	// Username and Password enable PLAIN auth (only over TLS, as net/smtp
	// insists, or to localhost). Default: no auth.
	Username string `json:"username,omitempty"`
	Password string `json:"-"`
}

// Duration is a time.Duration that reads "90s" in JSON.
type Duration time.Duration

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"90s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// LoadConfig reads the routing file (JSON); secrets and brokers come from
// flags.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("notify config: %w", err)
	}
	c := &Config{}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return nil, fmt.Errorf("notify config %s: %w", path, err)
	}
	return c, nil
}

func (c *Config) applyDefaults() {
	if c.Group == "" {
		c.Group = "classpulse-notify"
	}
	if c.Timezone == "" {
		c.Timezone = "UTC"
	}
	if c.DigestInterval <= 0 {
		c.DigestInterval = Duration(time.Hour)
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = Duration(time.Second)
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = Duration(time.Minute)
	}
	if c.HTTPTimeout <= 0 {
		c.HTTPTimeout = Duration(10 * time.Second)
	}
	if c.FlushEvery <= 0 {
		c.FlushEvery = Duration(5 * time.Second)
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		if r.MinLevel == "" {
			r.MinLevel = stream.LevelYellow
		}
		if len(r.States) == 0 {
			r.States = []string{stream.StateRaised, stream.StateEscalated, StateFollowUp}
		}
	}
}

func clock(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

// Validate reports a configuration that cannot work, naming the route.
func (c *Config) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("notify: no brokers given (--brokers or CLASSPULSE_BROKERS)")
	}
	if len(c.Routes) == 0 {
		return errors.New("notify: no routes configured")
	}
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil {
		return fmt.Errorf("notify: timezone: %w", err)
	}
	c.loc, c.quietStart, c.quietEnd = loc, -1, -1
	if (c.QuietStart == "") != (c.QuietEnd == "") {
		return errors.New("notify: quiet_start and quiet_end go together")
	}
	if c.QuietStart != "" {
		if c.quietStart, err = clock(c.QuietStart); err != nil {
			return fmt.Errorf("notify: quiet_start: %w", err)
		}
		if c.quietEnd, err = clock(c.QuietEnd); err != nil {
			return fmt.Errorf("notify: quiet_end: %w", err)
		}
	}
	for i, r := range c.Routes {
		bad := func(f string, a ...any) error { return fmt.Errorf("notify: route %d: %s", i, fmt.Sprintf(f, a...)) }
		if !slices.Contains(Channels, r.Channel) {
			return bad("channel %q is not one of %v", r.Channel, Channels)
		}
		for _, cat := range r.Categories {
			if !slices.Contains(stream.WarningCategories, cat) {
				return bad("category %q is not one of %v", cat, stream.WarningCategories)
			}
		}
		if stream.LevelRank(r.MinLevel) == 0 {
			return bad("min_level %q is not one of %v", r.MinLevel, stream.WarningLevels)
		}
		for _, s := range r.States {
			if !slices.Contains(routeStates, s) {
				return bad("state %q is not one of %v", s, routeStates)
			}
		}
		for _, role := range r.Roles {
			if !slices.Contains(rosterRoles, role) {
				return bad("role %q: per-student roles are %v; instructors and admins go in \"to\"", role, rosterRoles)
			}
			if r.Channel != ChannelEmail && r.Channel != ChannelWebhook {
				return bad("roles need channel email or webhook; group bots take fixed URLs in \"to\"")
			}
		}
		if len(r.Roles) == 0 && len(r.To) == 0 {
			return bad("no roles and no \"to\": nobody to notify")
		}
		for _, to := range r.To {
			if r.Channel == ChannelEmail {
				if !strings.Contains(to, "@") {
					return bad("%q is not an e-mail address", to)
				}
			} else if !strings.HasPrefix(to, "http://") && !strings.HasPrefix(to, "https://") {
				return bad("%q is not an http(s) URL", to)
			}
		}
		if r.Channel == ChannelEmail && (c.SMTP.Addr == "" || c.SMTP.From == "") {
			return bad("channel email needs smtp.addr and smtp.from")
		}
		if r.Channel == ChannelWebhook && len(c.WebhookSecret) < 16 {
			return bad("channel webhook needs a webhook secret of at least 16 characters (--webhook-secret)")
		}
	}
	return nil
}

// rosterRoles are the roles resolved per student from the roster.
var rosterRoles = []string{"student", "guardian", "counsellor", "class_teacher"}

var _ = ingest.ContactKey
