package otlp

import (
	"reflect"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// Decoding holds memory the body's size does not bound: every message
// (resource, scope, span, event, link, key-value, any-value, log record)
// becomes a Go struct of its own, 2 bytes of wire format for an empty span
// but ~330 allocated. The costs below bound it (TestDecodeCost measures them
// against proto.Unmarshal and protojson on realistic and hostile shapes).
const (
	// msgSlack is what a message holds beyond its struct: the struct's
	// allocation size class, its slot in a repeated field's slice (grown by
	// doubling) and a oneof wrapper.
	msgSlack = 48
	// byteCost is what decoding holds per body byte beyond the messages:
	// strings, bytes and unknown fields (appended, so up to twice their
	// size); for JSON also the copy with its ids rewritten and protojson's
	// scratch.
	byteCost = 8
)

var (
	tracesDesc = (&tracepb.TracesData{}).ProtoReflect().Descriptor()
	logsDesc   = (&logspb.LogsData{}).ProtoReflect().Descriptor()
	// msgCost is what decoding holds per message of each OTLP type, and
	// maxMsgCost the largest (what a JSON object is charged).
	msgCost    = map[protoreflect.FullName]int{}
	maxMsgCost int
)

func init() {
	addCosts(tracesDesc)
	addCosts(logsDesc)
}

// addCosts fills msgCost for md and the messages it holds, from the size of
// their generated Go structs.
func addCosts(md protoreflect.MessageDescriptor) {
	if _, ok := msgCost[md.FullName()]; ok {
		return
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName())
	if err != nil {
		panic("otlp: " + err.Error()) // the generated packages register them
	}
	size := int(reflect.TypeOf(mt.Zero().Interface()).Elem().Size())
	c := size + size/8 + msgSlack
	msgCost[md.FullName()] = c
	maxMsgCost = max(maxMsgCost, c)
	fields := md.Fields()
	for i := range fields.Len() {
		if m := fields.Get(i).Message(); m != nil {
			addCosts(m)
		}
	}
}

// TracesCost is an upper bound, in bytes, of what AppendTraces holds
// decoding body, found without decoding it: its messages are counted from
// the wire format (protobuf) or its '{' (JSON). It is linear in the body
// and allocates nothing, so a request can be charged before it is decoded.
func TracesCost(f Format, body []byte) int { return cost(f, body, tracesDesc) }

// LogsCost is TracesCost for AppendLogs.
func LogsCost(f Format, body []byte) int { return cost(f, body, logsDesc) }

func cost(f Format, body []byte, md protoreflect.MessageDescriptor) int {
	if f == JSON {
		return countBraces(body)*maxMsgCost + len(body)*byteCost
	}
	return msgCost[md.FullName()] + messagesCost(body, md, protowire.DefaultRecursionLimit) + len(body)*byteCost
}

// countBraces counts the '{' of a JSON body, an upper bound of its objects
// (a brace inside a string counts too).
func countBraces(b []byte) int {
	n := 0
	for _, c := range b {
		if c == '{' {
			n++
		}
	}
	return n
}

// messagesCost sums the msgCost of the sub-messages of message md's wire
// format b, at any depth. Fields are looked up in md so strings and bytes are never taken
// for messages; counting stops where b is malformed, as decoding does.
func messagesCost(b []byte, md protoreflect.MessageDescriptor, depth int) int {
	if depth <= 0 {
		return 0
	}
	fields := md.Fields()
	n := 0
	for len(b) > 0 {
		num, typ, tl := protowire.ConsumeTag(b)
		if tl < 0 {
			return n
		}
		b = b[tl:]
		if typ != protowire.BytesType {
			vl := protowire.ConsumeFieldValue(num, typ, b)
			if vl < 0 {
				return n
			}
			b = b[vl:]
			continue
		}
		v, vl := protowire.ConsumeBytes(b)
		if vl < 0 {
			return n
		}
		b = b[vl:]
		fd := fields.ByNumber(num)
		if fd == nil || (fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind) {
			continue
		}
		n += msgCost[fd.Message().FullName()] + messagesCost(v, fd.Message(), depth-1)
	}
	return n
}
