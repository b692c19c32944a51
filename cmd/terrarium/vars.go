package main

import (
	"fmt"
	"strings"
)

// varFlags collects repeated --var name=value flags, in order.
type varFlags struct {
	names  []string
	values map[string]string
}

func (v *varFlags) String() string { return "" }

func (v *varFlags) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("want name=value, like --var rounds=50")
	}
	if v.values == nil {
		v.values = map[string]string{}
	}
	if _, dup := v.values[name]; dup {
		return fmt.Errorf("variable %s given twice", name)
	}
	v.names = append(v.names, name)
	v.values[name] = value
	return nil
}
