package state

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/classpulse/classpulse/stream"
)

// TestAScoresOffsetLivesWithWhatItWrote: a score that writes the live hash
// keeps its offset there ("o"), refused and late scores in the offsets
// hash, and the last applied offset is the greater of the two wherever it
// is read: by the script's duplicate and gap checks, and by a store that
// loads the copy afresh (a restart, a rebalance). Each case redelivers
// scores to a store that has forgotten its copies, and expects them taken
// for duplicates with the state unchanged.
func TestAScoresOffsetLivesWithWhatItWrote(t *testing.T) {
	ctx := context.Background()
	field := offField(stream.TopicScores, 2)
	revoke := func(sec int, off int64, granted bool) Op {
		c := &stream.Consent{Header: stream.NewHeader("st1", t0.Add(time.Duration(sec)*time.Second)), Scope: stream.ScopeCamera, Granted: granted, PolicyVersion: "2026-1"}
		return Op{Event: c, Topic: stream.TopicConsent, Offset: off}
	}
	cases := []struct {
		name string
		// before is applied first; then the store forgets its copies and
		// again is applied, every op of it expected a duplicate.
		before, again []Op
		// offsets: what the offsets hash and the live hash's "o" hold
		// after before ("" none).
		offHash, liveO string
	}{
		{"applied scores", scoreOps("st1", 0, 5), scoreOps("st1", 2, 5), "", field + "|4"},
		{"a late score after them", append(scoreOps("st1", 1000, 1003), Op{Event: score("st1", 5, 1, 1), Topic: stream.TopicScores, Partition: 2, Offset: 1003}),
			append(scoreOps("st1", 1001, 1003), Op{Event: score("st1", 5, 1, 1), Topic: stream.TopicScores, Partition: 2, Offset: 1003}), "1003", field + "|1002"},
		// The revocation moves the last applied offset to the offsets
		// hash as it deletes the live hash, so that a grant after it does
		// not let the erased scores be applied again.
		{"an erasure, then a grant", append(append(scoreOps("st1", 0, 5), revoke(6, 1, false)), revoke(7, 2, true)), scoreOps("st1", 0, 5), "4", ""},
		{"refused scores after an erasure", append(append(scoreOps("st1", 0, 3), revoke(3, 1, false)), scoreOps("st1", 4, 6)...), scoreOps("st1", 0, 6), "5", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newStore(t)
			apply(t, s, c.before...)
			off, _ := s.Client().HGet(ctx, offKey("st1"), field).Result()
			o, _ := s.Client().HGet(ctx, LiveKey("st1"), liveOffsetField).Result()
			if off != c.offHash || o != c.liveO {
				t.Fatalf("offsets hash %q, live hash o %q; want %q and %q", off, o, c.offHash, c.liveO)
			}
			before := studentState(t, s, "st1")
			s.Forget()
			for i, r := range apply(t, s, c.again...) {
				if r.Status != Duplicate {
					t.Errorf("redelivered op %d: %v, want duplicate", i, r.Status)
				}
			}
			if after := studentState(t, s, "st1"); !reflect.DeepEqual(before, after) {
				t.Errorf("state changed by the redelivery:\n%v\nwas %v", after, before)
			}
		})
	}
}

// TestOffsetsAnEarlierReleaseKeptInTheOffsetsHashStillCount: a release
// before the live hash's "o" kept every score's offset in the offsets
// hash. A store of this one, loading such a student, takes the scores up
// to it for duplicates.
func TestOffsetsAnEarlierReleaseKeptInTheOffsetsHashStillCount(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	apply(t, s, scoreOps("st1", 0, 5)...)
	// As the earlier release left it: the offset in the offsets hash, no
	// "o" in the live hash.
	field := offField(stream.TopicScores, 2)
	if err := s.Client().HSet(ctx, offKey("st1"), field, 4).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Client().HDel(ctx, LiveKey("st1"), liveOffsetField).Err(); err != nil {
		t.Fatal(err)
	}
	before := studentState(t, s, "st1")
	s.Forget()
	wantAll(t, apply(t, s, scoreOps("st1", 3, 5)...), Duplicate, 3)
	if after := studentState(t, s, "st1"); !reflect.DeepEqual(before, after) {
		t.Errorf("state changed by the redelivery:\n%v\nwas %v", after, before)
	}
	wantAll(t, apply(t, s, scoreOps("st1", 5, 7)...), Applied, 5)
	if o, _ := s.Client().HGet(ctx, LiveKey("st1"), liveOffsetField).Result(); o != field+"|6" {
		t.Errorf("live hash o %q after two new scores, want %q", o, field+"|6")
	}
}
