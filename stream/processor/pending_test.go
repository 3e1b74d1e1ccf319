package processor

import "testing"

func newPendingDocs() *pendingDocs {
	return &pendingDocs{opens: map[string]pendingDoc{}, marks: map[uint64]int{}}
}

// save records a batch's documents as saved, as publishStage does.
func (d *pendingDocs) saveAll(docs map[string]string) {
	d.Lock()
	defer d.Unlock()
	d.saves++
	for id, doc := range docs {
		if cur, ok := d.opens[id]; ok && cur.saved == 0 && string(cur.doc) == doc {
			cur.saved = d.saves
			d.opens[id] = cur
		}
	}
}

func (d *pendingDocs) compute(id, doc string) {
	d.Lock()
	defer d.Unlock()
	d.opens[id] = pendingDoc{doc: []byte(doc)}
}

func (d *pendingDocs) newerDoc(id string, m uint64) (string, bool) {
	d.Lock()
	defer d.Unlock()
	doc, ok := d.newer(id, m)
	return string(doc), ok
}

func TestPendingDocumentsOverrideWhatABatchsScriptsMayHaveReadBeforeTheSave(t *testing.T) {
	cases := []struct {
		name string
		run  func(d *pendingDocs) (mark uint64)
		want string // "" for none: the batch evaluates what its scripts read
	}{
		{"computed, not saved: newer whatever the mark", func(d *pendingDocs) uint64 {
			m := d.mark()
			d.compute("st1", "A")
			return m
		}, "A"},
		{"saved after the batch wrote its scripts: they may have read the older one", func(d *pendingDocs) uint64 {
			d.compute("st1", "A")
			m := d.mark()
			d.saveAll(map[string]string{"st1": "A"})
			return m
		}, "A"},
		{"saved before the batch wrote its scripts: they read it", func(d *pendingDocs) uint64 {
			d.compute("st1", "A")
			d.saveAll(map[string]string{"st1": "A"})
			return d.mark()
		}, ""},
		{"a newer computed one replaces a saved one", func(d *pendingDocs) uint64 {
			d.compute("st1", "A")
			d.saveAll(map[string]string{"st1": "A"})
			m := d.mark()
			d.compute("st1", "B")
			d.saveAll(map[string]string{"st1": "A"}) // an older batch's save does not mark B saved
			return m
		}, "B"},
		{"another student's document is not this one's", func(d *pendingDocs) uint64 {
			m := d.mark()
			d.compute("st2", "A")
			return m
		}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := newPendingDocs()
			m := c.run(d)
			got, ok := d.newerDoc("st1", m)
			if c.want == "" && ok {
				t.Fatalf("document %q overrides what the scripts read", got)
			}
			if c.want != "" && got != c.want {
				t.Fatalf("document %q (%v), want %q", got, ok, c.want)
			}
		})
	}
}

func TestSavedDocumentsGoOnlyOnceEveryBatchThatMayHaveReadAnOlderOneEvaluated(t *testing.T) {
	d := newPendingDocs()
	d.compute("st1", "A")
	early := d.mark() // wrote its scripts before the save
	d.saveAll(map[string]string{"st1": "A"})
	late := d.mark() // after it
	d.done(late)
	if doc, ok := d.newerDoc("st1", early); !ok || doc != "A" {
		t.Fatalf("the saved document went while a batch that wrote before the save was in flight (%q, %v)", doc, ok)
	}
	d.done(early)
	if len(d.opens) != 0 || len(d.marks) != 0 {
		t.Fatalf("after every batch evaluated: %d documents and %d marks kept", len(d.opens), len(d.marks))
	}
	// An unsaved document stays whatever finishes.
	d.compute("st1", "B")
	d.done(d.mark())
	if _, ok := d.newerDoc("st1", d.mark()); !ok {
		t.Fatal("an unsaved document went")
	}
}
