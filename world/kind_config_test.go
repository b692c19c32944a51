package world_test

import (
	"strings"
	"testing"

	"github.com/terrarium-sim/terrarium/world"
)

type cfg struct{ N int }

func TestConfigAs(t *testing.T) {
	if c, err := world.ConfigAs[cfg]("k", &cfg{N: 3}); err != nil || c.N != 3 {
		t.Errorf("pointer: %+v, %v", c, err)
	}
	if c, err := world.ConfigAs[cfg]("k", cfg{N: 4}); err != nil || c.N != 4 {
		t.Errorf("value: %+v, %v", c, err)
	}
	if _, err := world.ConfigAs[cfg]("k", (*cfg)(nil)); err == nil || err.Error() != "k: nil config" {
		t.Errorf("nil pointer: %v", err)
	}
	if _, err := world.ConfigAs[cfg]("k", 5); err == nil || !strings.Contains(err.Error(), "k: config is int, want *world_test.cfg") {
		t.Errorf("wrong type: %v", err)
	}
}
