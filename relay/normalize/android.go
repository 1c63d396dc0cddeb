package normalize

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/baton-relay/baton/relay/event"
)

// Android model names, as Relay's normalize_context does for a device
// context: when the context's model is a known Android model (NE2211),
// its name becomes the model's marketing name (OnePlus 10 Pro 5G). Relay
// bundles the table (its android_models.csv, from Google Play's supported
// devices list); Baton reads it from a file the operator names
// (normalization.android_models), in the same form, and without one
// leaves device names as sent.

// ErrAndroidModels is wrapped by ParseAndroidModels's errors.
var ErrAndroidModels = errors.New("android models table")

// ParseAndroidModels reads a table of Android models and their marketing
// names as Relay reads its android_models.csv: a header line naming the
// columns "Model" and "Marketing Name" among others, then a device a line,
// fields split at commas (no quoting) and trimmed; a line with too few
// fields is skipped, and of lines naming the same model the last wins.
// Relay uses an empty table when the header lacks a column; here that is
// an error, as the file is the operator's.
func ParseAndroidModels(r io.Reader) (map[string]string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrAndroidModels, err)
		}
		return nil, fmt.Errorf("%w: no header line", ErrAndroidModels)
	}
	model, name := -1, -1
	for i, f := range strings.Split(strings.TrimPrefix(sc.Text(), "\uFEFF"), ",") {
		switch strings.TrimSpace(f) {
		case "Model":
			model = i
		case "Marketing Name":
			name = i
		}
	}
	if model < 0 || name < 0 {
		return nil, fmt.Errorf("%w: the header names no \"Model\" or no \"Marketing Name\" column", ErrAndroidModels)
	}
	m := map[string]string{}
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ",")
		if len(fields) > max(model, name) {
			m[strings.TrimSpace(fields[model])] = strings.TrimSpace(fields[name])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAndroidModels, err)
	}
	return m, nil
}

// deviceContext names the device of a known Android model.
func (e *norm) deviceContext(dev *event.Node) {
	if len(e.models) == 0 {
		return
	}
	model, ok := dev.Get("model").Str()
	if !ok {
		return
	}
	if name, ok := e.models[model]; ok && !dev.Get("name").Is(name) {
		e.t.Set(dev, "name", e.t.NewString(name))
	}
}
