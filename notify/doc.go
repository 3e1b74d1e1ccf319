// Package notify reaches people where they are when a warning changes: it
// consumes classpulse.warnings.v1 in its own consumer group, routes each
// warning by category, level and state to roles (student, guardian of a
// minor, counsellor, class teacher, instructor, admin) and channels (SMTP
// e-mail, signed JSON webhooks, WeCom / DingTalk / Feishu group bots),
// holds messages over quiet hours and folds them into digests where a route
// asks for one, retries failed deliveries with exponential backoff and
// dead-letters them after a limit.
//
// Help-plan reminders (package helploop) go through the same routing: a
// warning with state StateFollowUp whose reason is the reminder; routes
// cover it unless their states leave it out.
//
// Every delivery attempt is recorded in Redis (AttemptsKey(ref), one list
// per warning) so the dashboard can show it on the warning. Who a role is
// for a student comes from the roster the importer writes (package ingest:
// profile fields counsellors, class_teachers, guardians; contact hashes).
//
// notify does not decide whether a warning exists (package rules) nor who
// may see it in the dashboard (package dashboard).
package notify
