package routing

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// meterName is the instrumentation scope of routing's instruments.
const meterName = "github.com/baton-relay/baton/routing"

// produceKey is the Kafka API key of Produce requests.
const produceKey = 0

// produceBuckets are the bounds (seconds) of the produce latency histogram.
var produceBuckets = []float64{0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// kafkaMetrics is a franz-go hook that records one cluster's produce
// requests (latency, failures) and the records it could not produce.
// Attribute sets are built once: the hooks run per request and record.
type kafkaMetrics struct {
	latency       metric.Float64Histogram
	requestErrors metric.Int64Counter
	recordErrors  metric.Int64Counter
	attrs         []metric.RecordOption
	addAttrs      []metric.AddOption
}

var _ interface {
	kgo.HookBrokerE2E
	kgo.HookProduceRecordUnbuffered
} = (*kafkaMetrics)(nil)

// newKafkaMetrics registers the instruments of cluster with mp.
func newKafkaMetrics(mp metric.MeterProvider, cluster string) (*kafkaMetrics, error) {
	m := mp.Meter(meterName)
	k := &kafkaMetrics{}
	var err error
	if k.latency, err = m.Float64Histogram("baton_kafka_produce_latency_seconds",
		metric.WithDescription("Produce requests to a Kafka cluster, from write to response, by cluster."),
		metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(produceBuckets...)); err != nil {
		return nil, err
	}
	if k.requestErrors, err = m.Int64Counter("baton_kafka_produce_request_errors_total",
		metric.WithDescription("Produce requests that failed (connection or request error), by cluster.")); err != nil {
		return nil, err
	}
	if k.recordErrors, err = m.Int64Counter("baton_kafka_produce_record_errors_total",
		metric.WithDescription("Records franz-go finished with an error (Baton retries them from the buffer), by cluster.")); err != nil {
		return nil, err
	}
	set := attribute.NewSet(attribute.String("cluster", cluster))
	k.attrs = []metric.RecordOption{metric.WithAttributeSet(set)}
	k.addAttrs = []metric.AddOption{metric.WithAttributeSet(set)}
	return k, nil
}

// OnBrokerE2E implements kgo.HookBrokerE2E.
func (k *kafkaMetrics) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e kgo.BrokerE2E) {
	if key != produceKey {
		return
	}
	if e.Err() != nil {
		k.requestErrors.Add(context.Background(), 1, k.addAttrs...)
		return
	}
	k.latency.Record(context.Background(), e.DurationE2E().Seconds(), k.attrs...)
}

// OnProduceRecordUnbuffered implements kgo.HookProduceRecordUnbuffered.
func (k *kafkaMetrics) OnProduceRecordUnbuffered(_ *kgo.Record, err error) {
	if err != nil {
		k.recordErrors.Add(context.Background(), 1, k.addAttrs...)
	}
}
