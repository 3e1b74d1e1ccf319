package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/classpulse/classpulse/internal/config"
	"github.com/classpulse/classpulse/vision"
)

func init() {
	register("score", "score one image: one JSON object per face on stdout", scoreImage)
}

func scoreImage(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("score", flag.ContinueOnError)
	image := fs.String("image", "", "image file (JPEG or PNG)")
	dir := fs.String("model-dir", "models", "model folder")
	jur := fs.String("jurisdiction", "", "where the learner is; eu switches emotion inference off")
	detector := fs.String("detector", vision.DefaultChain, "face detector chain, one of "+fmt.Sprint(vision.Chains))
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	if err := vision.CheckChain(*detector); err != nil {
		return err
	}
	if *image == "" {
		return fmt.Errorf("--image is required")
	}
	emotionOff, err := vision.EmotionForbidden(*jur)
	if err != nil {
		return err
	}
	m, err := vision.LoadModels(*dir)
	if err != nil {
		return err
	}
	defer m.Close()
	img, err := vision.ReadImage(*image)
	if err != nil {
		return err
	}
	defer img.Close()
	s := vision.NewScorer(m, vision.ScoreConfig{EmotionOff: emotionOff, Detect: vision.DetectConfig{Chain: *detector}})
	defer s.Close()
	faces, err := s.ScoreFrame(img, 0)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	for _, f := range faces {
		if err := enc.Encode(f); err != nil {
			return err
		}
	}
	return nil
}
