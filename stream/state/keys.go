package state

import "strconv"

// Key shapes. Every key of one student carries the hash tag {s:<student>}
// so the apply script touches one Redis Cluster slot; every key of one
// class session carries {c:<session>}.

// StudentTag is the hash tag of a student's keys.
func StudentTag(student string) string { return "{s:" + student + "}" }

// StudentKeys are every key of a student's state, in the order the apply
// script takes them for a click, grade or consent.
func StudentKeys(student string) []string {
	t := StudentTag(student)
	return []string{t + ":off", t + ":live", t + ":study", t + ":clicks", t + ":grades", t + ":consent", t + ":warn", t + ":profile", t + ":dttw", t + ":weeks"}
}

// WeeksKey holds a student's study seconds per course and week
// ("w|course|week"). A click or grade returns only the weeks the rules
// read (Calendar), so that its reply does not grow with the weeks a
// student has studied.
func WeeksKey(student string) string { return StudentTag(student) + ":weeks" }

// DTTWKey holds a student's click counts per DTTW window
// ("d|course|window|kind"), apart from the term counts of the clicks hash
// that the rules read with every click.
func DTTWKey(student string) string { return StudentTag(student) + ":dttw" }

// scoreKeys are the apply script's KEYS for a score: only the five it
// uses (each key is an argument Redis turns into an object and a Lua
// string on every call).
func scoreKeys(student string) []string {
	t := StudentTag(student)
	return []string{t + ":off", t + ":live", t + ":consent", t + ":warn", t + ":profile"}
}

// offKey holds a student's last applied offset per topic partition
// (offField), and the outbox markers of unpublished consent audits.
func offKey(student string) string { return StudentTag(student) + ":off" }

// offField is the field of a student's offsets hash (offKey) that
// holds the last offset applied from one topic partition.
func offField(topic string, partition int) string {
	return topic + ":" + strconv.Itoa(partition)
}

// lastField is offField remembering the last field it made: a batch's
// events come partition by partition, so most make none.
type lastField struct {
	topic     string
	partition int
	field     string
}

func (l *lastField) of(topic string, partition int) string {
	if l.field == "" || l.topic != topic || l.partition != partition {
		l.topic, l.partition, l.field = topic, partition, offField(topic, partition)
	}
	return l.field
}

// LiveKey holds a student's per-second buckets and rolling window sums.
func LiveKey(student string) string { return StudentTag(student) + ":live" }

// WarnKey holds a student's open warnings (the rules' lifecycle document).
func WarnKey(student string) string { return StudentTag(student) + ":warn" }

// ProfileKey holds roster facts about a student: class, unit, minor, degree wishes.
func ProfileKey(student string) string { return StudentTag(student) + ":profile" }

// ConsentKey holds the student's consent per scope.
func ConsentKey(student string) string { return StudentTag(student) + ":consent" }

// ClassTag is the hash tag of a class session's keys.
func ClassTag(session string) string { return "{c:" + session + "}" }

// TilesKey holds the latest tile of every student of a session (field =
// student, value = tile JSON), for the first paint of a class grid.
func TilesKey(session string) string { return ClassTag(session) + ":tiles" }

// ClassWarnKey holds a session's open class-level warnings.
func ClassWarnKey(session string) string { return ClassTag(session) + ":warn" }

// The live feed dashboards read (docs/architecture.md).
const (
	// LiveWarnings is a stream; field "e" is a warning event's JSON.
	LiveWarnings = "classpulse:live:warnings"
	// LiveTiles is a pub/sub channel; each message is a tile event's JSON.
	LiveTiles = "classpulse:live:tiles"
	// LiveInterventions is a stream; field "e" is an intervention's JSON.
	LiveInterventions = "classpulse:live:interventions"
	// LiveMaxLen bounds the live streams (approximate trimming).
	LiveMaxLen = 100000
)
