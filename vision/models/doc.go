// Package models owns the edge worker's model files and everything about
// them that needs no OpenCV: the TensorFlow.js weights-manifest reader, the
// face-api feature-extractor architecture with a reference forward pass in
// Go, the converter that writes it as ONNX (a minimal protobuf encoder), the
// Nyström kernel-PCA fit and projection, and the versioned manifest that
// pins every file by checksum. It is pure Go; running the converted nets is
// package vision's job.
package models
