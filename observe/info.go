package observe

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// InfoFile is the name of the file in a live run's directory that tells
// observers where and how to connect.
const InfoFile = "observer.json"

// Info is what an observer needs to read a live run (observer.json).
type Info struct {
	Run          string `json:"run"`
	URL          string `json:"url"`              // nats://127.0.0.1:PORT
	WebsocketURL string `json:"ws_url,omitempty"` // ws://127.0.0.1:PORT, if the host listens for websockets
	User         string `json:"user"`
	Password     string `json:"password"`
	InboxPrefix  string `json:"inbox_prefix"` // the only inbox the observer may read (nats.CustomInboxPrefix)
	Stream       string `json:"stream"`       // the run's event stream
	Subjects     string `json:"subjects"`     // sim.<run>.events.>
	HostPID      int    `json:"host_pid"`     // the host process; when it is gone, so is the bus
}

// ReadInfo reads dir/observer.json.
func ReadInfo(dir string) (Info, error) {
	var in Info
	b, err := os.ReadFile(filepath.Join(dir, InfoFile))
	if err != nil {
		return in, fmt.Errorf("observer info: %w", err)
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return in, fmt.Errorf("observer info %s: %w", filepath.Join(dir, InfoFile), err)
	}
	if in.URL == "" || in.Stream == "" || in.User == "" {
		return in, fmt.Errorf("observer info %s: url, stream or user missing", filepath.Join(dir, InfoFile))
	}
	return in, nil
}

// WriteInfo writes in to dir/observer.json with mode 0600 (it holds a
// password), replacing it atomically.
func WriteInfo(dir string, in Info) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // subjects end in ">"
	enc.SetIndent("", "  ")
	if err := enc.Encode(in); err != nil {
		return fmt.Errorf("observer info: %w", err)
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	path := filepath.Join(dir, InfoFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write observer info: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return errors.Join(fmt.Errorf("write observer info: %w", err), os.Remove(tmp))
	}
	return nil
}
