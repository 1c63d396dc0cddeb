package config

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strconv"

	"github.com/baton-relay/baton/relay/clientopts"
)

// ProjectClientOptions is a static project's client options document
// (docs/client-options.md): the clientOptions part of a managed project, in
// YAML. Its JSON is what clientopts.Parse reads.
type ProjectClientOptions struct {
	// Version is the schema version; only 1 exists. Required.
	Version int `yaml:"version" json:"version"`
	// Options apply to every client. Default: none set.
	Options ClientOptionValues `yaml:"options" json:"options"`
	// Rules override Options for the clients they match, in order.
	// Default: none.
	Rules []ClientOptionsRule `yaml:"rules" json:"rules,omitempty"`
}

// ClientOptionValues are SDK settings; unset (null) leaves the SDK's own.
type ClientOptionValues struct {
	TracesSampleRate         *float64 `yaml:"traces_sample_rate" json:"traces_sample_rate,omitempty"`
	ProfilesSampleRate       *float64 `yaml:"profiles_sample_rate" json:"profiles_sample_rate,omitempty"`
	ReplaysSessionSampleRate *float64 `yaml:"replays_session_sample_rate" json:"replays_session_sample_rate,omitempty"`
	ReplaysOnErrorSampleRate *float64 `yaml:"replays_on_error_sample_rate" json:"replays_on_error_sample_rate,omitempty"`
	EnableMinidumps          *bool    `yaml:"enable_minidumps" json:"enable_minidumps,omitempty"`
	SendDefaultPII           *bool    `yaml:"send_default_pii" json:"send_default_pii,omitempty"`
}

// ClientOptionsRule targets clients; see clientopts.Rule.
type ClientOptionsRule struct {
	ID      string             `yaml:"id" json:"id"`
	Match   ClientOptionsMatch `yaml:"match" json:"match"`
	Options ClientOptionValues `yaml:"options" json:"options"`
}

// ClientOptionsMatch is a rule's targeting; see clientopts.Match.
type ClientOptionsMatch struct {
	Releases     []string `yaml:"releases" json:"releases,omitempty"`
	Environments []string `yaml:"environments" json:"environments,omitempty"`
	Platforms    []string `yaml:"platforms" json:"platforms,omitempty"`
	SDKs         []string `yaml:"sdks" json:"sdks,omitempty"`
	SDKVersion   string   `yaml:"sdk_version" json:"sdk_version,omitempty"`
	Percentage   *float64 `yaml:"percentage" json:"percentage,omitempty"`
}

// JSON is the document as clientopts reads it.
func (o *ProjectClientOptions) JSON() []byte {
	b, _ := json.Marshal(o) // plain values: cannot fail
	return b
}

// Document compiles the document.
func (o *ProjectClientOptions) Document() (*clientopts.Document, error) {
	return clientopts.Parse(o.JSON())
}

// clientOptions validates the document at field (projects.<id>.
// client_options, managed.client_options.<id>), each problem at the line
// of its value.
func (v *validator) clientOptions(field string, o *ProjectClientOptions) {
	if o == nil {
		return
	}
	_, err := o.Document()
	var fe *clientopts.FieldError
	if errors.As(err, &fe) {
		if fe.Path != "" {
			field += "." + fe.Path
		}
		v.errorf(field, "%s", fe.Msg)
	}
}

// managedClientOptions validates managed.client_options: documents keyed
// by project id.
func (v *validator) managedClientOptions() {
	for _, id := range slices.Sorted(maps.Keys(v.c.Managed.ClientOptions)) {
		field := "managed.client_options." + id
		n, err := strconv.ParseUint(id, 10, 64)
		if err != nil {
			v.errorf(field, "%q is not a project id (a number)", id)
			continue
		}
		// "042" would be a second document for project 42, one silently
		// replacing the other.
		if canon := strconv.FormatUint(n, 10); canon != id {
			v.errorf(field, "%q: write the project id as %s", id, canon)
			continue
		}
		if v.c.Managed.ClientOptions[id] == nil {
			v.errorf(field, "needs a document (at least version: 1)")
			continue
		}
		v.clientOptions(field, v.c.Managed.ClientOptions[id])
	}
}
