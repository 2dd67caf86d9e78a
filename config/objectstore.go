package config

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// S3Schemes are the jarURI schemes read from artifacts.s3: s3:// and
// Flink's aliases s3a:// and s3p://, which mean the same here.
var S3Schemes = []string{"s3", "s3a", "s3p"}

// GCSScheme is the jarURI scheme read from artifacts.gcs.
const GCSScheme = "gs"

// bucketName is the union of S3's and GCS's bucket naming rules; the store
// itself refuses what it does not accept.
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$`)

// SplitBucketEntry splits an allowedBuckets entry, "bucket" or
// "bucket/prefix/", and says what is wrong with it. A prefix ends in "/"
// so that "jars/" cannot also admit "jars-private/".
func SplitBucketEntry(e string) (bucket, prefix string, err error) {
	bucket, prefix, _ = strings.Cut(e, "/")
	if !bucketName.MatchString(bucket) {
		return "", "", fmt.Errorf("%q is not a bucket name (3-222 of a-z 0-9 . _ -, starting and ending with a letter or digit)", bucket)
	}
	if prefix == "" {
		return bucket, "", nil
	}
	if !strings.HasSuffix(prefix, "/") {
		return "", "", errors.New("a prefix must end in /")
	}
	for _, seg := range strings.Split(strings.TrimSuffix(prefix, "/"), "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", "", errors.New("a prefix has no empty, . or .. segments")
		}
	}
	return bucket, prefix, nil
}

// objectStores validates artifacts.s3 and artifacts.gcs; a store is in use
// when one of its schemes is in artifacts.allowedSchemes.
func (v *validator) objectStores(a Artifacts) {
	useS3 := slices.ContainsFunc(a.AllowedSchemes, func(s string) bool { return slices.Contains(S3Schemes, s) })
	useGCS := slices.Contains(a.AllowedSchemes, GCSScheme)
	v.objectStore("artifacts.s3", a.S3, useS3, "s3", false)
	v.objectStore("artifacts.gcs", a.GCS, useGCS, "gs", true)
}

func (v *validator) objectStore(key string, o ObjectStore, inUse bool, scheme string, gcs bool) {
	if inUse && len(o.AllowedBuckets) == 0 {
		v.add(key+".allowedBuckets", fmt.Sprintf("is required when %s is an allowed scheme", scheme),
			"list the buckets (or bucket/prefix/) jars may be read from: the daemon's credentials may read more than jars")
	}
	for i, e := range o.AllowedBuckets {
		if _, _, err := SplitBucketEntry(e); err != nil {
			v.add(fmt.Sprintf("%s.allowedBuckets[%d]", key, i), err.Error(), "write bucket or bucket/prefix/")
		}
	}
	if o.Endpoint != "" {
		u, err := url.Parse(o.Endpoint)
		switch {
		case err != nil:
			v.add(key+".endpoint", fmt.Sprintf("is not a URL: %v", urlErr(err)), "write https://host[:port]")
		case u.Scheme != "https" && u.Scheme != "http", u.Host == "":
			v.add(key+".endpoint", fmt.Sprintf("%q is not an http(s) URL with a host", RedactURL(o.Endpoint)), "write https://host[:port]")
		case u.User != nil, u.RawQuery != "", strings.Trim(u.Path, "/") != "":
			v.add(key+".endpoint", "has a user, path or query", "write only https://host[:port]; credentials go in the key files")
		}
	}
	if (o.AccessKeyIDFile == "") != (o.SecretAccessKeyFile == "") {
		v.add(key+".secretAccessKeyFile", "accessKeyIDFile and secretAccessKeyFile go together", "set both, or neither to use the SDK's default credential chain")
	}
	if gcs && inUse && o.AccessKeyIDFile == "" {
		v.add(key+".accessKeyIDFile", "is required for gs:// (GCS's XML API signs with HMAC keys)", "create an HMAC key for the daemon's service account and name the files holding its id and secret")
	}
	v.fileExists(key+".accessKeyIDFile", o.AccessKeyIDFile)
	v.fileExists(key+".secretAccessKeyFile", o.SecretAccessKeyFile)
}
