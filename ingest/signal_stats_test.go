package ingest

import (
	"context"
	"math"
	"testing"
	"time"
)

func TestSignalStatsSummarisesKindsPerLocalDay(t *testing.T) {
	ctx := context.Background()
	rdb := redisClient(t)
	sh, _ := time.LoadLocation("Asia/Shanghai")
	// Card: 10 on 3 March, 30 on 4 March (one entry at 23:30 UTC on 3 March
	// is 07:30 on 4 March in Shanghai); library once; an activity outside
	// the range.
	data := "student,kind,ts,value\n" +
		"s1,card,2025-03-03 12:00,10\n" +
		"s1,card,2025-03-04 08:00,20\n" +
		"s1,card,2025-03-03T23:30:00Z,10\n" +
		"s1,library,2025-03-05 19:00,\n" +
		"s1,activity,2025-01-10 15:00,\n"
	im, err := NewImporter(ImportConfig{Kind: KindSignals, Location: sh, DryRun: true}, rdb, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, rep, err := im.Check(table(t, "s.csv", data))
	if err != nil || len(rep.Errors) > 0 {
		t.Fatalf("%v %+v", err, rep.Errors)
	}
	// Only the Redis view matters here; write it without a broker.
	if err := im.writeRedis(ctx, p, rep); err != nil {
		t.Fatal(err)
	}
	from := time.Date(2025, 3, 1, 0, 0, 0, 0, sh)
	st, err := ReadSignalStats(ctx, rdb, "s1", from, from.AddDate(0, 0, 14), sh)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st["activity"]; ok || len(st) != 2 {
		t.Fatalf("kinds %v, want card and library only", st)
	}
	card := st["card"]
	if card.Count != 3 || card.Sum != 40 || card.Days != 2 {
		t.Fatalf("card %+v", card)
	}
	// Days of 10 and 30: mean 20, stddev 10.
	if math.Abs(card.DailyCV-0.5) > 1e-9 {
		t.Fatalf("card daily CV %v, want 0.5", card.DailyCV)
	}
	if lib := st["library"]; lib.Count != 1 || lib.DailyCV != 0 || !lib.Last.Equal(time.Date(2025, 3, 5, 11, 0, 0, 0, time.UTC)) {
		t.Fatalf("library %+v", lib)
	}
}
