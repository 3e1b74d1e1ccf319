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
// Integration points:
//   - Run(table, Options) → *Result; Result.Assignments() gives each
//     student's profile to write back to state (stream/state.ProfileKey);
//     WriteReport renders the page.
//   - Compare(dataset, TrainConfig) scores the models on held-out
//     students; Fit trains the model to save (Model.Save, LoadModel).
//   - (*Model).Predict(features) → (class, probabilities by class), with
//     features in Model.Features order and NaN for a missing value; the
//     predicted grade and probs["D"] feed a "predicted risk" warning rule.
//
// Everything is deterministic for a seed, independent of the core count.
// The package does not read Redis or Kafka, raise warnings, or serve pages;
// the processor, rules and dashboard do that with what it returns.
package profile
