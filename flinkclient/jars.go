package flinkclient

import (
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// UploadJar uploads the jar at localPath (multipart part "jarfile") and
// returns its jar id for RunJar. Needs web.submit.enable (the default).
func (c *Client) UploadJar(ctx context.Context, localPath string) (string, error) {
	op := "upload jar " + filepath.Base(localPath)
	f, err := os.Open(localPath)
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	defer f.Close()
	return c.UploadJarFrom(ctx, filepath.Base(localPath), f)
}

// UploadJarFrom uploads a jar read from r under the file name name and
// returns its jar id.
func (c *Client) UploadJarFrom(ctx context.Context, name string, r io.Reader) (string, error) {
	op := "upload jar " + name
	if !strings.HasSuffix(name, ".jar") {
		// Flink refuses uploads whose file name does not end in .jar.
		return "", &Error{Kind: KindBadRequest, Op: op, Message: "file name must end in .jar"}
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		h := make(textproto.MIMEHeader)
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="jarfile"; filename=%q`, name))
		h.Set("Content-Type", "application/x-java-archive")
		part, err := mw.CreatePart(h)
		if err == nil {
			_, err = io.Copy(part, r)
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	var j struct {
		Filename string `json:"filename"`
		Status   string `json:"status"`
	}
	err := c.do(ctx, request{
		op: op, method: http.MethodPost, segments: []string{"jars", "upload"},
		rawBody: pr, contentType: mw.FormDataContentType(), timeout: c.uploadTimeout,
	}, &j)
	// Unblock the writer goroutine if the request ended before reading it all.
	pr.CloseWithError(io.ErrClosedPipe)
	if err != nil {
		return "", err
	}
	if j.Status != "success" || j.Filename == "" {
		return "", &Error{Kind: KindServer, Op: op, Message: fmt.Sprintf("upload answered status %q, filename %q", j.Status, j.Filename)}
	}
	// The jar id is the stored file's base name (<uuid>_<name>.jar).
	return path.Base(filepath.ToSlash(j.Filename)), nil
}

// DeleteJar deletes an uploaded jar.
func (c *Client) DeleteJar(ctx context.Context, jarID string) error {
	return c.do(ctx, request{op: "delete jar " + jarID, method: http.MethodDelete, segments: []string{"jars", jarID}}, nil)
}

// RunJar submits a job from an uploaded jar and returns its job id. With
// req.JobID set, a second submission of the same id fails with ErrConflict
// instead of starting the job twice. The claim mode is sent as claimMode to
// Flink 1.20 and later and as restoreMode to older versions (1.20 accepts
// both but logs restoreMode as deprecated; 2.x documents only claimMode),
// so RunJar asks for the version first (once per client) when a claim mode
// is set.
func (c *Client) RunJar(ctx context.Context, jarID string, req JarRunRequest) (string, error) {
	op := "run jar " + jarID
	if req.JobID != "" {
		op += " as job " + req.JobID
		if err := checkID(op, "job id", req.JobID); err != nil {
			return "", err
		}
	}
	body := jarRunJSON{
		EntryClass:            req.EntryClass,
		ProgramArgsList:       req.Args,
		JobID:                 req.JobID,
		SavepointPath:         req.SavepointPath,
		AllowNonRestoredState: req.AllowNonRestoredState,
		FlinkConfiguration:    req.FlinkConfiguration,
	}
	if req.Parallelism > 0 {
		body.Parallelism = &req.Parallelism
	}
	if req.ClaimMode != "" {
		v, err := c.Version(ctx)
		if err != nil {
			return "", fmt.Errorf("%s: %w", op, err)
		}
		if v.AtLeast(1, 20) {
			body.ClaimMode = req.ClaimMode
		} else {
			body.RestoreMode = req.ClaimMode
		}
	}
	var j struct {
		JobID string `json:"jobid"`
	}
	// Submission builds the job graph in the JobManager; give it the upload budget.
	if err := c.do(ctx, request{op: op, method: http.MethodPost, segments: []string{"jars", jarID, "run"}, body: body, timeout: max(c.timeout, c.uploadTimeout)}, &j); err != nil {
		return "", err
	}
	if j.JobID == "" {
		return "", &Error{Kind: KindServer, Op: op, Message: "answer has no jobid"}
	}
	return j.JobID, nil
}

type jarRunJSON struct {
	EntryClass            string            `json:"entryClass,omitempty"`
	ProgramArgsList       []string          `json:"programArgsList,omitempty"`
	Parallelism           *int              `json:"parallelism,omitempty"`
	JobID                 string            `json:"jobId,omitempty"`
	SavepointPath         string            `json:"savepointPath,omitempty"`
	AllowNonRestoredState bool              `json:"allowNonRestoredState,omitempty"`
	RestoreMode           ClaimMode         `json:"restoreMode,omitempty"`
	ClaimMode             ClaimMode         `json:"claimMode,omitempty"`
	FlinkConfiguration    map[string]string `json:"flinkConfiguration,omitempty"`
}

// MaxListedJars caps how many jars ListJars returns, and maxJarListBytes
// the size of the answer it reads: the upload directory is shared with
// anyone who can reach the REST API, so its listing is untrusted input.
const (
	MaxListedJars   = 1000
	maxJarListBytes = 8 << 20
)

// JarFile is an uploaded jar as GET /jars lists it.
type JarFile struct {
	// ID is the stored file name (<uuid>_<name>), the id RunJar and
	// DeleteJar take.
	ID string
	// Name is the file name the jar was uploaded under.
	Name string
	// Uploaded is when it was uploaded.
	Uploaded time.Time
}

// ListJars lists the jars uploaded to the JobManager (at most
// MaxListedJars of them, in the order Flink lists them).
func (c *Client) ListJars(ctx context.Context) ([]JarFile, error) {
	var j struct {
		Files []struct {
			ID       string `json:"id"`
			Name     string `json:"name"`
			Uploaded int64  `json:"uploaded"`
		} `json:"files"`
	}
	if err := c.do(ctx, request{op: "list jars", method: http.MethodGet, segments: []string{"jars"}, maxBody: maxJarListBytes}, &j); err != nil {
		return nil, err
	}
	out := make([]JarFile, 0, min(len(j.Files), MaxListedJars))
	for _, f := range j.Files {
		if len(out) == MaxListedJars {
			break
		}
		out = append(out, JarFile{ID: f.ID, Name: f.Name, Uploaded: msTime(f.Uploaded)})
	}
	return out, nil
}
