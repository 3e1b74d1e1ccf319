// Package ingest takes data into classpulse from the systems schools already
// run: xAPI statements from an LMS (XAPIHandler, mounted at
// POST /api/v1/xapi/statements), and roster, grade and campus-signal files
// in CSV or XLSX (Importer, behind `classpulse import`).
//
// It owns the mapping from outside shapes onto v1 events (xAPI verbs and
// activity types onto the 14 click kinds, file rows onto stream.Grade and
// profile fields) and the deterministic event ids that make re-sending the
// same statement or re-importing the same file recognisably the same. It
// does not own the events (package stream), the per-student state (package
// stream/state) or the rules that read the signals (package rules).
//
// See docs/ingest.md for the mapping table, the file formats and where each
// kind of row ends up.
package ingest
