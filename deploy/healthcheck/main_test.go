package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestProbeAcceptsOnly2xx(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		delay   time.Duration
		wantErr string
	}{
		{name: "ok", status: http.StatusOK, body: "ok\n"},
		{name: "no content", status: http.StatusNoContent},
		{name: "not ready reports the reason", status: http.StatusServiceUnavailable, body: "redis: connection refused\nmore", wantErr: "redis: connection refused"},
		{name: "redirect is not healthy", status: http.StatusFound, wantErr: "302"},
		{name: "hanging server times out", status: http.StatusOK, delay: 500 * time.Millisecond, wantErr: "deadline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.delay > 0 {
					select {
					case <-time.After(tt.delay):
					case <-r.Context().Done():
						return
					}
				}
				if tt.status == http.StatusFound {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			err := probe(context.Background(), noRedirect, srv.URL+"/readyz", 100*time.Millisecond)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("probe: %v, want nil", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("probe: nil, want error containing %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("probe: %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestProbeFailsWhenNothingListens(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	if err := probe(context.Background(), http.DefaultClient, url, time.Second); err == nil {
		t.Fatal("probe of a closed port succeeded")
	}
}
