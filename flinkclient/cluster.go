package flinkclient

import (
	"context"
	"net/http"
	"time"
)

// msTime converts Flink's epoch milliseconds to a time; 0 and negative
// values (Flink's "not set" is -1) give the zero time.
func msTime(ms int64) time.Time {
	if ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

type configJSON struct {
	RefreshInterval int64  `json:"refresh-interval"`
	TimezoneName    string `json:"timezone-name"`
	TimezoneOffset  int64  `json:"timezone-offset"`
	FlinkVersion    string `json:"flink-version"`
	FlinkRevision   string `json:"flink-revision"`
	Features        struct {
		WebSubmit bool `json:"web-submit"`
		WebCancel bool `json:"web-cancel"`
	} `json:"features"`
}

// Config returns the JobManager's web configuration, including the Flink
// version, and remembers the version for version-dependent calls.
func (c *Client) Config(ctx context.Context) (Config, error) {
	var j configJSON
	if err := c.do(ctx, request{op: "get cluster config", method: http.MethodGet, segments: []string{"config"}}, &j); err != nil {
		return Config{}, err
	}
	cfg := Config{
		FlinkVersion:    j.FlinkVersion,
		FlinkRevision:   j.FlinkRevision,
		TimezoneName:    j.TimezoneName,
		TimezoneOffset:  j.TimezoneOffset,
		RefreshInterval: time.Duration(j.RefreshInterval) * time.Millisecond,
		WebSubmit:       j.Features.WebSubmit,
		WebCancel:       j.Features.WebCancel,
	}
	if v, err := ParseVersion(j.FlinkVersion); err == nil {
		c.mu.Lock()
		c.version = &v
		c.mu.Unlock()
	}
	return cfg, nil
}

// Version returns the cluster's Flink version, asking /config once and
// remembering the answer (or the version given with WithVersion).
func (c *Client) Version(ctx context.Context) (Version, error) {
	c.mu.Lock()
	v := c.version
	c.mu.Unlock()
	if v != nil {
		return *v, nil
	}
	cfg, err := c.Config(ctx)
	if err != nil {
		return Version{}, err
	}
	parsed, err := ParseVersion(cfg.FlinkVersion)
	if err != nil {
		return Version{}, &Error{Kind: KindServer, Op: "detect flink version", Message: err.Error()}
	}
	return parsed, nil
}

// JobManagerConfig returns the cluster configuration the JobManager runs
// with (GET /jobmanager/config) as key → value.
func (c *Client) JobManagerConfig(ctx context.Context) (map[string]string, error) {
	var entries []struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	}
	if err := c.do(ctx, request{op: "get jobmanager config", method: http.MethodGet, segments: []string{"jobmanager", "config"}}, &entries); err != nil {
		return nil, err
	}
	m := make(map[string]string, len(entries))
	for _, e := range entries {
		m[e.Key] = e.Value
	}
	return m, nil
}

// Overview returns the cluster overview: TaskManagers, slots, job counts, version.
func (c *Client) Overview(ctx context.Context) (Overview, error) {
	var j struct {
		TaskManagers        int    `json:"taskmanagers"`
		SlotsTotal          int    `json:"slots-total"`
		SlotsAvailable      int    `json:"slots-available"`
		TaskManagersBlocked int    `json:"taskmanagers-blocked"`
		JobsRunning         int    `json:"jobs-running"`
		JobsFinished        int    `json:"jobs-finished"`
		JobsCancelled       int    `json:"jobs-cancelled"`
		JobsFailed          int    `json:"jobs-failed"`
		FlinkVersion        string `json:"flink-version"`
		FlinkCommit         string `json:"flink-commit"`
	}
	if err := c.do(ctx, request{op: "get cluster overview", method: http.MethodGet, segments: []string{"overview"}}, &j); err != nil {
		return Overview{}, err
	}
	return Overview{
		TaskManagers:       j.TaskManagers,
		SlotsTotal:         j.SlotsTotal,
		SlotsAvailable:     j.SlotsAvailable,
		TaskManagerBlocked: j.TaskManagersBlocked,
		JobsRunning:        j.JobsRunning,
		JobsFinished:       j.JobsFinished,
		JobsCancelled:      j.JobsCancelled,
		JobsFailed:         j.JobsFailed,
		FlinkVersion:       j.FlinkVersion,
		FlinkCommit:        j.FlinkCommit,
	}, nil
}

// TaskManagers lists the registered TaskManagers.
func (c *Client) TaskManagers(ctx context.Context) ([]TaskManager, error) {
	var j struct {
		TaskManagers []struct {
			ID                     string `json:"id"`
			Path                   string `json:"path"`
			DataPort               int    `json:"dataPort"`
			TimeSinceLastHeartbeat int64  `json:"timeSinceLastHeartbeat"`
			SlotsNumber            int    `json:"slotsNumber"`
			FreeSlots              int    `json:"freeSlots"`
			Blocked                bool   `json:"blocked"`
		} `json:"taskmanagers"`
	}
	if err := c.do(ctx, request{op: "list taskmanagers", method: http.MethodGet, segments: []string{"taskmanagers"}}, &j); err != nil {
		return nil, err
	}
	tms := make([]TaskManager, 0, len(j.TaskManagers))
	for _, t := range j.TaskManagers {
		tms = append(tms, TaskManager{
			ID:          t.ID,
			Path:        t.Path,
			DataPort:    t.DataPort,
			SlotsNumber: t.SlotsNumber,
			FreeSlots:   t.FreeSlots,
			// Despite its name the field holds the epoch millis of the last heartbeat.
			LastHeartbeat: msTime(t.TimeSinceLastHeartbeat),
			Blocked:       t.Blocked,
		})
	}
	return tms, nil
}
