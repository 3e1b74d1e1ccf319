package rules

import (
	"fmt"
	"sync/atomic"
)

// Holder holds the policy in force for concurrent readers and swaps it on
// reload. A reload that fails keeps the last good policy.
type Holder struct {
	p atomic.Pointer[Policy]
}

// NewHolder returns a Holder with p in force.
func NewHolder(p *Policy) *Holder {
	h := &Holder{}
	h.p.Store(p)
	return h
}

// Policy returns the policy in force. Callers use one Policy value for a
// whole evaluation and reconcile, so a reload never mixes two policies.
func (h *Holder) Policy() *Policy { return h.p.Load() }

// Store puts p in force.
func (h *Holder) Store(p *Policy) {
	if p != nil {
		h.p.Store(p)
	}
}

// Reload loads the policy at path and puts it in force. On any error the
// policy in force stays as it was and the error says why (a *PolicyError
// names the lines).
func (h *Holder) Reload(path string) error {
	p, err := LoadPolicyFile(path)
	if err != nil {
		return fmt.Errorf("reload keeps policy %q: %w", h.Policy().describe(), err)
	}
	h.p.Store(p)
	return nil
}

// describe names the policy for messages.
func (p *Policy) describe() string {
	if p == nil {
		return "none"
	}
	d := p.Digest
	if len(d) > 12 {
		d = d[:12]
	}
	return p.Name + "@" + p.Source + ":" + d
}
