package routing

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// TopicCreation creates the topics a Kafka cluster does not have when
// Baton first produces to them (kafka.clusters.NAME.create_topics).
type TopicCreation struct {
	// Partitions of a created topic; -1 is the broker's num.partitions.
	Partitions int32
	// Replication is the replication factor; -1 is the broker's
	// default.replication.factor.
	Replication int16
}

// MissingTopicError is a routed topic the cluster does not have, while
// topic creation is off: its records stay buffered (the error is
// retryable) until the topic exists.
type MissingTopicError struct {
	Cluster, Topic string
	Err            error // kerr.UnknownTopicOrPartition
}

func (e *MissingTopicError) Error() string {
	return fmt.Sprintf("kafka cluster %q has no topic %q: create it, or set kafka.clusters.%s.create_topics.enabled", e.Cluster, e.Topic, e.Cluster)
}

func (e *MissingTopicError) Unwrap() error { return e.Err }

// missingTopic returns the indexes of the records that failed because the
// topic does not exist.
func missingTopic(outcome []error) []int {
	var idx []int
	for i, err := range outcome {
		if errors.Is(err, kerr.UnknownTopicOrPartition) {
			idx = append(idx, i)
		}
	}
	return idx
}

// createTopic creates topic with KafkaOptions.CreateTopics, or returns a
// *MissingTopicError when that is off. A topic created meanwhile by
// someone else is no error.
func (k *Kafka) createTopic(ctx context.Context, topic string, cause error) error {
	tc := k.opts.CreateTopics
	if tc == nil {
		return &MissingTopicError{Cluster: k.opts.Cluster, Topic: topic, Err: cause}
	}
	resps, err := kadm.NewClient(k.cl).CreateTopics(ctx, tc.Partitions, tc.Replication, nil, topic)
	if err == nil {
		var r kadm.CreateTopicResponse
		if r, err = resps.On(topic, nil); err == nil {
			err = r.Err
		}
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %q (kafka.clusters.%s.create_topics): %w", topic, k.opts.Cluster, err)
	}
	if err == nil && k.opts.OnTopicCreated != nil {
		k.opts.OnTopicCreated(topic)
	}
	return nil
}
