package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/classpulse/classpulse/internal/config"
	"github.com/classpulse/classpulse/vision/consent"
)

func init() {
	register("consent", "show what is measured and sent, ask, record the answer and publish it", consentAsk)
	register("consent revoke", "revoke camera consent: capture stops, the revocation is published", consentRevoke)
}

func consentAsk(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("consent", flag.ContinueOnError)
	var c common
	c.flags(fs)
	answer := fs.String("answer", "", "answer without prompting: camera, camera+emotion or no")
	guardian := fs.String("guardian", "", "guardian id when the student is a minor")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	fmt.Fprint(os.Stderr, consent.Notice)
	a := *answer
	if a == "" {
		fmt.Fprint(os.Stderr, "\nAllow the camera? [camera / camera+emotion / no]: ")
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && line == "" {
			return errors.New("no answer given; nothing recorded, no capture")
		}
		a = strings.TrimSpace(line)
	}
	now := time.Now().UTC()
	l, err := c.learner(now)
	if err != nil {
		return err
	}
	rec := consent.Record{Student: c.student, PolicyVersion: consent.PolicyVersion, Guardian: *guardian, At: now}
	switch a {
	case "camera":
		rec.Camera = true
	case "camera+emotion":
		rec.Camera, rec.Emotion = true, true
	case "no":
	default:
		return fmt.Errorf("answer %q: use camera, camera+emotion or no", a)
	}
	// Declining needs nobody's permission; a minor's grant needs a guardian.
	// Nothing is recorded or published when it is refused.
	if rec.Camera {
		if err := rec.CheckCapture(l, now); err != nil {
			return fmt.Errorf("%w (give the answering guardian's id with --guardian)", err)
		}
	}
	return recordAndPublish(ctx, &c, rec)
}

func consentRevoke(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("consent revoke", flag.ContinueOnError)
	var c common
	c.flags(fs)
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	rec, err := consent.Load(c.consentPath())
	if err != nil && !errors.Is(err, consent.ErrNotRecorded) {
		return err
	}
	if c.student == "" {
		c.student = rec.Student
	}
	rec = consent.Record{Student: c.student, PolicyVersion: consent.PolicyVersion, Guardian: rec.Guardian, At: time.Now().UTC()}
	return recordAndPublish(ctx, &c, rec)
}

// recordAndPublish saves the answer first (a running capture stops within
// a second of a revocation), then spools the consent events and tries to
// deliver them for a few seconds; undelivered ones stay in
// <state-dir>/consent-spool and go out with the next consent command.
func recordAndPublish(ctx context.Context, c *common, rec consent.Record) error {
	evs, err := rec.Events(rec.At)
	if err != nil {
		return err
	}
	if err := consent.Save(c.consentPath(), rec); err != nil {
		return err
	}
	logger, err := config.NewLogger(os.Stderr, c.logLevel, "text")
	if err != nil {
		return err
	}
	sp, deliver, closeOut, err := c.outbox("consent-spool", logger, nil)
	if err != nil {
		return err
	}
	defer closeOut()
	if err := sp.Publish(ctx, evs...); err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- deliver(dctx) }()
	sp.Flush(dctx)
	cancel()
	<-done
	state := "published"
	if n := sp.Pending(); n > 0 {
		state = fmt.Sprintf("kept in the spool (%d events; broker unreachable, sent on the next run)", n)
	}
	fmt.Printf("consent recorded: camera=%v emotion=%v answered_by=%s policy=%s; %s\n", rec.Camera, rec.Emotion, rec.AnsweredBy(), rec.PolicyVersion, state)
	return nil
}
