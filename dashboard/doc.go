// Package dashboard is where staff, students and guardians see classpulse:
// the HTTP server with the versioned JSON API under /api/v1/, the WebSocket
// hub that fans the Redis live feed (warnings, tiles, interventions) out to
// browsers, token sign-in with roles and scopes enforced on the server, and
// the pages, embedded from web/ with no build step.
//
// It owns authorisation (who may see which class, student and warning, and
// when a warning is released to a student or guardian) and the wire
// protocol of the WebSocket endpoint (docs/api.md). It does not compute
// state or raise warnings: the processor writes the live feed, and the
// queue subpackage projects the warnings and interventions topics into the
// durable read model the warning queue is served from. Every replica is
// stateless; any number can run behind a load balancer.
package dashboard
