package game

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Observation is the JSON a seat receives every tick (see the package doc).
// Agents written in Go decode into it.
type Observation struct {
	Round   int         `json:"round"`  // the round to play now (= the tick), 1-based
	Rounds  int         `json:"rounds"` // rounds per match
	Matches []MatchView `json:"matches"`
}

// MatchView is one match as one of its players sees it.
type MatchView struct {
	Match string `json:"match"` // stable id, the key of the move in Action.Moves
	You   string `json:"you"`   // your moves in the rounds played so far, oldest first
	Them  string `json:"them"`  // your opponent's moves in the same rounds
}

// Action is the JSON an agent answers with: one move per match it plays.
type Action struct {
	Moves map[string]string `json:"moves"`
}

// encodeObservation writes st's observation. Moves and match ids need no
// JSON escaping, so it is appended directly: one copy of each history.
func (w *World) encodeObservation(st *seatState) json.RawMessage {
	size := 48 + len(st.plays)*(40+2*w.round)
	b := make([]byte, 0, size)
	b = append(b, `{"round":`...)
	b = strconv.AppendInt(b, int64(w.round+1), 10)
	b = append(b, `,"rounds":`...)
	b = strconv.AppendInt(b, int64(w.s.rounds), 10)
	b = append(b, `,"matches":[`...)
	for k, p := range st.plays {
		m := &w.matches[p.match]
		if k > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"match":"`...)
		b = append(b, m.id...)
		b = append(b, `","you":"`...)
		b = append(b, m.hist[p.side]...)
		b = append(b, `","them":"`...)
		b = append(b, m.hist[1-p.side]...)
		b = append(b, `"}`...)
	}
	b = append(b, "]}"...)
	return b
}

// decodeAction parses an action strictly: one JSON object with a "moves"
// object and nothing else.
func decodeAction(data json.RawMessage) (Action, error) {
	var act Action
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&act); err != nil {
		return Action{}, fmt.Errorf("malformed action (want {\"moves\":{\"MATCH\":\"MOVE\",...}}): %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Action{}, errors.New("malformed action: data after the JSON object")
	}
	if act.Moves == nil {
		return Action{}, errors.New(`malformed action: no "moves" object`)
	}
	return act, nil
}
