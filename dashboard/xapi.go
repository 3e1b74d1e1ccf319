package dashboard

import (
	"net/http"

	"github.com/classpulse/classpulse/ingest"
)

// WithXAPI mounts the xAPI statements endpoint (ingest.XAPIHandler, the
// handler `classpulse xapi` serves on its own) at ingest.XAPIPath. It
// authenticates its source systems itself (HTTP Basic per source), so it is
// not behind the dashboard's sign-in; it is counted in the requests metric
// like every route.
func WithXAPI(h http.Handler) Option { return func(s *Server) { s.xapi = h } }

// xapiRoute registers the mounted xAPI endpoint, if any.
func (s *Server) xapiRoute(handle func(string, http.HandlerFunc)) {
	if s.xapi != nil {
		handle("POST "+ingest.XAPIPath, s.xapi.ServeHTTP)
	}
}
