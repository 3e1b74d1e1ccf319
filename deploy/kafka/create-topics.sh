#!/bin/sh
# Creates the classpulse topics of topics.txt on the compose Kafka. Safe to
# run again: existing topics are left alone (--if-not-exists), so a changed
# partition count needs kafka-topics.sh --alter by hand (docs/operations.md).
#
# Environment: BOOTSTRAP (host:port), REPLICATION (replication factor),
# TOPICS (path of topics.txt), KAFKA_BIN (folder of the Kafka scripts).
set -eu
: "${BOOTSTRAP:=kafka:9092}"
: "${REPLICATION:=1}"
: "${TOPICS:=/classpulse/topics.txt}"
: "${KAFKA_BIN:=/opt/kafka/bin}"

# Kafka's healthcheck passes before the controller accepts topic creation on
# a cold start; wait until the admin API answers.
i=0
until "$KAFKA_BIN/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" --list >/dev/null 2>&1; do
	i=$((i + 1))
	if [ "$i" -ge 60 ]; then
		echo "create-topics: $BOOTSTRAP not answering after 60 tries" >&2
		exit 1
	fi
	sleep 2
done

grep -v '^[[:space:]]*#' "$TOPICS" | while read -r topic partitions retention; do
	[ -n "$topic" ] || continue
	"$KAFKA_BIN/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists \
		--topic "$topic" --partitions "$partitions" --replication-factor "$REPLICATION" \
		--config "retention.ms=$retention" --config cleanup.policy=delete
	echo "create-topics: $topic partitions=$partitions retention.ms=$retention"
done
