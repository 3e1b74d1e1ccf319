// Package profile owns learner profiles and grade-risk prediction, after
// the learner-profile study of SOURCES.md §5.
//
// TODO: filled in with the API once it settles.
package profile
