// Package flinktb runs real Apache Flink (1.20.x and 2.2.x) for the test bed as
// local JVM processes, without container images.
//
// flink-dist is not published to Maven Central, so tests/scripts/build-flink.sh
// resolves, per version, the jars flink-dist ships in lib/ (flink-runtime,
// flink-clients, flink-runtime-web, flink-streaming-java, flink-container,
// flink-rpc-akka-loader, log4j) into the cache and builds the stateful test job
// (tests/flink/testjob, io.flinkgitops.testjob.CounterJob) against that version.
//
// [Command] turns the container args of the official Flink image
// (apache/flink-docker's docker-entrypoint.sh: "jobmanager", "taskmanager",
// "standalone-job --job-classname C ...") into the java command line that the
// image's scripts (jobmanager.sh, taskmanager.sh, standalone-job.sh,
// flink-console.sh, config.sh) would run. The node agent uses it to play
// kubelet; [StartSession] and [StartApplication] use it to give tests a real
// cluster on loopback ports; [JobProgress] reads the test job's counter so a
// test can tell restored state from lost state.
package flinktb
