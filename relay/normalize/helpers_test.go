package normalize

// values is the list under key's "values" of a decoded event.
func values(ev map[string]any, key string) []any {
	o, _ := ev[key].(map[string]any)
	l, _ := o["values"].([]any)
	return l
}
