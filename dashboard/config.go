package dashboard

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/classpulse/classpulse/stream"
)

// Config configures a Server. The zero value works: every field documents
// its default, applied by New before Validate.
type Config struct {
	// Addr is the listen address. Default "127.0.0.1:8080"; port 0 picks
	// a free port (read it back with Server.Addr).
	Addr string
	// AllowedOrigins are the origins (scheme://host[:port]) browsers may
	// open the WebSocket and call the API from. Default: the server's own
	// origin only (the Host the request was sent to). "*" is refused.
	AllowedOrigins []string
	// TokenKeys are the signing keys, in ParseKeys form
	// ("kid=hex,kid2=hex"). Default: one random key made at start, so
	// tokens are valid only for this process (fine for the demo; set it
	// for several replicas or `classpulse token`).
	TokenKeys string
	// SendQueue is how many frames may wait for one WebSocket client. A
	// client whose queue is full is disconnected, never waited for.
	// Default 256; keep it above 100, the most live entries the hub hands
	// over at once, so that a burst does not drop healthy clients.
	SendQueue int
	// MaxMessageBytes bounds one frame from a client and one API body.
	// Default 8192 (frames) and 64 KiB (bodies, eight times this).
	MaxMessageBytes int64
	// WriteTimeout is the write deadline for one frame to a slow client
	// before it is dropped. Default 5s.
	WriteTimeout time.Duration
	// CatchUpLimit bounds how many warnings a reconnecting client is sent
	// from the live stream when it resumes. Default 10000.
	CatchUpLimit int
	// ReleaseCategories are the warning categories a staff confirmation
	// releases to the student and guardian. Live signals (engagement,
	// class) go to the instructor only and cannot be listed here.
	// Default study, grade, degree, risk, custom.
	ReleaseCategories []string
	// SecureCookie marks the session cookie Secure (HTTPS deployments).
	// Default false, since the demo runs on plain http://127.0.0.1.
	SecureCookie bool
	// ShutdownTimeout bounds the graceful shutdown. Default 10s.
	ShutdownTimeout time.Duration
	// Brokers, when set, make Run also run the queue projector (the
	// warnings and interventions topics into the Redis read model) in
	// consumer group QueueGroup. Default none: another process projects.
	Brokers []string
	// KafkaTLS, when set, makes the queue projector speak TLS to Kafka
	// (--kafka-tls*). Default plain TCP.
	KafkaTLS *tls.Config
	// QueueGroup is the projector's consumer group. Default "classpulse-queue".
	QueueGroup string
	// SchoolName is printed on notices. Default "classpulse".
	SchoolName string
	// Limits are the per-token and per-address rate limits on the API and
	// on WebSocket connects; a refused request gets 429 with Retry-After
	// and the reason. Default: none (the command sets DefaultRateLimits).
	Limits RateLimits
	// TrustedProxies are the addresses or CIDR prefixes of reverse proxies
	// (the Ingress) whose X-Forwarded-For names the client, for the
	// per-address limits. Default none: the peer address is the client.
	TrustedProxies []string
	// RevocationPoll is how often the replica rereads the token revocation
	// list from Redis besides the pub/sub notice of each new revocation,
	// and closes the WebSockets of revoked tokens. Default 15s; at most 1m.
	RevocationPoll time.Duration
	// TLSCert and TLSKey are PEM files of the certificate chain and key
	// the server answers HTTPS and WSS with. Default none: plain HTTP, for
	// a listener on loopback or behind a TLS-terminating Ingress. With
	// them the session cookie is always Secure.
	TLSCert, TLSKey string
	// Jurisdiction is the deployment's profile (stream.ParseJurisdiction):
	// under "eu" the dashboard shows no emotion field (tiles' dominant
	// learning emotion, the live series' learning emotions) and no warning
	// derived from emotion inference, on the API, the WebSocket and so the
	// pages. Default "default".
	Jurisdiction string
}

func (c *Config) applyDefaults() {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8080"
	}
	if c.SendQueue <= 0 {
		c.SendQueue = 256
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = 8192
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 5 * time.Second
	}
	if c.CatchUpLimit <= 0 {
		c.CatchUpLimit = 10000
	}
	if c.ReleaseCategories == nil {
		c.ReleaseCategories = []string{stream.CategoryStudy, stream.CategoryGrade, stream.CategoryDegree, stream.CategoryRisk, stream.CategoryCustom}
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	if c.RevocationPoll <= 0 {
		c.RevocationPoll = 15 * time.Second
	}
	if c.QueueGroup == "" {
		c.QueueGroup = "classpulse-queue"
	}
	if c.SchoolName == "" {
		c.SchoolName = "classpulse"
	}
}

// Validate reports a configuration that cannot work.
func (c *Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("dashboard: addr %q: %w", c.Addr, err)
	}
	for _, o := range c.AllowedOrigins {
		if o == "*" {
			return errors.New("dashboard: allowed origin \"*\" would let any web page act as a signed-in user")
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return fmt.Errorf("dashboard: allowed origin %q: want scheme://host[:port]", o)
		}
	}
	if c.TokenKeys != "" {
		if _, err := ParseKeys(c.TokenKeys); err != nil {
			return fmt.Errorf("dashboard: %w", err)
		}
	}
	if c.SendQueue > 1<<16 {
		return fmt.Errorf("dashboard: send queue %d too large (at most 65536)", c.SendQueue)
	}
	if c.MaxMessageBytes < 512 || c.MaxMessageBytes > 1<<20 {
		return fmt.Errorf("dashboard: max message bytes %d out of range 512..1048576", c.MaxMessageBytes)
	}
	for _, cat := range c.ReleaseCategories {
		if !slices.Contains(stream.WarningCategories, cat) {
			return fmt.Errorf("dashboard: release category %q is not one of %v", cat, stream.WarningCategories)
		}
		if cat == stream.CategoryEngagement || cat == stream.CategoryClass {
			return fmt.Errorf("dashboard: release category %q: live signals go to the instructor only", cat)
		}
	}
	for _, r := range []Rate{c.Limits.APIPerToken, c.Limits.APIPerIP, c.Limits.WSPerToken, c.Limits.WSPerIP} {
		if r.PerSecond < 0 || (r.PerSecond > 0 && r.Burst < 1) {
			return fmt.Errorf("dashboard: rate limit %+v: a positive rate needs a burst of at least 1", r)
		}
	}
	if _, err := stream.ParseJurisdiction(c.Jurisdiction); err != nil {
		return fmt.Errorf("dashboard: %w", err)
	}
	if c.RevocationPoll > time.Minute {
		return fmt.Errorf("dashboard: revocation poll %v: at most 1m, so a revoked user's WebSockets close within a minute", c.RevocationPoll)
	}
	if _, err := parseProxies(c.TrustedProxies); err != nil {
		return err
	}
	for _, b := range c.Brokers {
		if !strings.Contains(b, ":") {
			return fmt.Errorf("dashboard: broker %q is not host:port", b)
		}
	}
	return nil
}

// maxBodyBytes bounds a JSON API request body.
func (c *Config) maxBodyBytes() int64 { return 8 * c.MaxMessageBytes }
