// Package profile owns learner profiles and grade-risk prediction, after
// the learner-profile study of SOURCES.md §5: per student and course a
// feature table in four label groups (basic, behaviour, outcome, emotion),
// min–max normalised; K-means with k-means++ seeding and k by the elbow
// method; clusters named marginal, balanced or diligent by comparing their
// group means with the overall mean; a 2-D PCA projection and a
// self-contained HTML report with SVG charts; and grade classes
// (A ≥ 90, B ≥ 80, C ≥ 60, D < 60) predicted by its own multiclass
// gradient-boosted trees, compared in the same run with multinomial
// logistic regression, a random forest and the majority class.
//
// Inputs. A feature table comes from a CSV (ReadCSV: per-row errors with
// row, line, column and reason; empty/NA/NaN/null cells are missing and
// imputed with the column median), from a synthetic cohort
// (GenerateCohort), from a file of v1 events (Accumulator.ReadJSONL, then
// FeaturesFromAggregates), or from running sums a caller already holds
// (fill one Aggregate per student and course, then FeaturesFromAggregates).
// FeatureNames, PredictorFeatures, BehaviourFeatures, OutcomeFeatures,
// EmotionFeatures and WindowFeatures name the canonical columns.
//
// The live state is a fourth input: ReadState reads the processor's
// per-student state in Redis (state_redis.go, the key shapes of
// stream/state) into aggregates.
//
// Integration points:
//   - Run(table, Options) → *Result; Learners(table, result, model, …)
//     gives each row's profile and predicted grade, and WriteLearners
//     writes them back into the student's roster hash
//     (stream/state.ProfileKey, stored form in package profile/learner);
//     WriteReport renders the page.
//   - Compare(dataset, TrainConfig) scores the models on held-out
//     students; Fit trains the model to save (Model.Save, LoadModel).
//   - (*Model).Predict(features) → (class, probabilities by class), with
//     features in Model.Features order and NaN for a missing value; the
//     predicted grade and probs["D"] feed a "predicted risk" warning rule.
//
// Everything is deterministic for a seed, independent of the core count.
// Of Redis it only reads the processor's state and writes the learner
// records; it does not read Kafka, raise warnings, or serve pages: the
// processor, rules (predicted_risk) and dashboard do that with what it
// writes.
package profile
