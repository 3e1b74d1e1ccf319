package rules

// Evaluate runs every rule of p over s and returns the findings that hold
// at s.Now, in a stable order. It is pure: no I/O, no clock, no state. Live
// rules run only when s.Live is set and captured; academic rules always
// run. To reconcile after a score event pass FamilyLive to Reconcile, after
// a click or grade event FamilyAcademic.
func Evaluate(p *Policy, s *Snapshot) []Finding {
	return EvaluateFamilies(p, s, FamilyAcademic|FamilyLive)
}

// EvaluateFamilies is Evaluate restricted to the families in fam, for a
// processor that only needs, say, the live rules on a score event.
func EvaluateFamilies(p *Policy, s *Snapshot, fam Family) []Finding {
	var e evaluator
	e.p, e.s = p, s
	e.out = make([]Finding, 0, 4)
	if fam&FamilyAcademic != 0 {
		e.academic()
		e.campus()
		e.predictedRisk()
	}
	if fam&FamilyLive != 0 && s.Live != nil && s.Live.Captured {
		e.live()
	}
	e.custom(fam)
	return e.out
}

// EvaluateClass runs the class-level rules of p over c.
func EvaluateClass(p *Policy, c *ClassSnapshot) []Finding {
	var e evaluator
	e.p = p
	e.class(c)
	return e.out
}

// evaluator collects findings for one evaluation.
type evaluator struct {
	p   *Policy
	s   *Snapshot
	out []Finding
}
