package stream

// Topic names of DESIGN.md §4. Every event is keyed by student id except
// tiles, which are keyed by session so that one consumer sees a whole class.
const (
	TopicScores        = "classpulse.scores.v1"
	TopicClicks        = "classpulse.clicks.v1"
	TopicGrades        = "classpulse.grades.v1"
	TopicConsent       = "classpulse.consent.v1"
	TopicWarnings      = "classpulse.warnings.v1"
	TopicInterventions = "classpulse.interventions.v1"
	TopicTiles         = "classpulse.tiles.v1"
	TopicDLQ           = "classpulse.dlq.v1"
	// TopicSignals carries generic campus signals (library visits, card
	// spending, dormitory access, activities) imported by `classpulse import`.
	TopicSignals = "classpulse.signals.v1"
)

// InputTopics are the topics the per-student processor consumes.
var InputTopics = []string{TopicScores, TopicClicks, TopicGrades, TopicConsent}

// AllTopics lists every topic classpulse produces or consumes, in a stable
// order, for creating them on an embedded or real cluster.
var AllTopics = []string{
	TopicScores, TopicClicks, TopicGrades, TopicConsent,
	TopicWarnings, TopicInterventions, TopicTiles, TopicDLQ, TopicAudit, TopicSignals,
}
