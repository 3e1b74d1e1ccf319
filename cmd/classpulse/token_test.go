package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/classpulse/classpulse/dashboard"
	"github.com/classpulse/classpulse/internal/testenv"
)

func TestTokenRevokeStoresTheRevocationForEveryReplica(t *testing.T) {
	r := testenv.StartRedis(t)
	var out bytes.Buffer
	if err := runTokenRevoke(context.Background(), []string{"--redis", r.Addr, "--sub", "c1", "--reason", "left the school", "--by", "ops"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "every token of c1") {
		t.Fatalf("report %q does not say what was revoked", out.String())
	}
	list, err := dashboard.ListRevocations(context.Background(), r.Client(t), time.Now())
	if err != nil || len(list) != 1 || list[0].Subject != "c1" || list[0].By != "ops" || list[0].Reason != "left the school" {
		t.Fatalf("revocation list %+v %v", list, err)
	}
	for _, args := range [][]string{
		{"--redis", r.Addr},
		{"--redis", r.Addr, "--jti", "a", "--sub", "b"},
		{"--redis", r.Addr, "--jti", "a b"},
	} {
		if err := runTokenRevoke(context.Background(), args, &out); err == nil {
			t.Errorf("token revoke %v: no error", args)
		}
	}
}
