package io.flinkgitops.testjob;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.connector.source.util.ratelimit.RateLimiterStrategy;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.configuration.ConfigOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.datagen.source.DataGeneratorSource;
import org.apache.flink.connector.datagen.source.GeneratorFunction;
import org.apache.flink.metrics.Gauge;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.util.Collector;

/**
 * A stateful job whose state makes loss visible: a rate-limited generator feeds a keyed
 * counter held in {@link ValueState}. Restored from a savepoint or retained checkpoint the
 * counts continue; started empty they begin again at 1.
 *
 * <p>Progress is observable from outside in two ways: the gauge {@value #METRIC} on the
 * counting operator (the highest count this subtask has produced, available through the REST
 * metrics API) and, with {@code --progress-file PATH}, a file {@code PATH.<subtask>} holding
 * the same number, rewritten atomically about once a second.
 *
 * <p>Arguments: {@code --checkpoint-interval-ms N} (default 2000), {@code --rate N} records per
 * second over all source subtasks (default 20), {@code --keys N} (default 4),
 * {@code --progress-file PATH}; {@code -D key=value} arguments are ignored. The same source
 * compiles against Flink 1.20 and 2.x.
 *
 * <p>Failure switches, so a test can make a running job fail by itself: {@code --fail-file PATH}
 * makes every record throw while that file exists (checked at most every 100 ms), and
 * {@code --fail-after-records N} makes each subtask throw after it processed N records since it
 * (re)started. Whether the job then restarts within Flink or goes FAILED is the restart strategy
 * of its configuration ({@code restart-strategy.type}).
 */
public final class CounterJob {

    /** Name of the gauge on the counting operator. */
    public static final String METRIC = "flinkGitopsCounter";

    private CounterJob() {}

    public static void main(String[] args) throws Exception {
        long intervalMs = 2000;
        double rate = 20;
        long keys = 4;
        String progressFile = "";
        String failFile = "";
        long failAfterRecords = 0;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            // In application mode standalone-job.sh appends the JobManager's
            // derived memory settings ("-D key=value") after the job args, and
            // Flink hands them to the job; skip them as ParameterTool would.
            if (a.equals("-D")) {
                i++;
                continue;
            }
            if (a.startsWith("-D")) {
                continue;
            }
            if (i + 1 >= args.length) {
                throw new IllegalArgumentException("missing value for " + a);
            }
            String v = args[++i];
            switch (a) {
                case "--checkpoint-interval-ms":
                    intervalMs = Long.parseLong(v);
                    break;
                case "--rate":
                    rate = Double.parseDouble(v);
                    break;
                case "--keys":
                    keys = Long.parseLong(v);
                    break;
                case "--progress-file":
                    progressFile = v;
                    break;
                case "--fail-file":
                    failFile = v;
                    break;
                case "--fail-after-records":
                    failAfterRecords = Long.parseLong(v);
                    break;
                default:
                    throw new IllegalArgumentException("unknown argument " + a);
            }
        }

        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        Configuration conf = new Configuration();
        // Keep checkpoints when the job is cancelled so last-state upgrades can restore from
        // them. Set by key so the same source works with 1.20's and 2.x's option classes.
        conf.set(
                ConfigOptions.key("execution.checkpointing.externalized-checkpoint-retention")
                        .stringType()
                        .noDefaultValue(),
                "RETAIN_ON_CANCELLATION");
        env.configure(conf);
        env.enableCheckpointing(intervalMs);

        DataGeneratorSource<Long> source =
                new DataGeneratorSource<>(
                        new Identity(), Long.MAX_VALUE, RateLimiterStrategy.perSecond(rate), Types.LONG);

        DataStream<String> counted = env.fromSource(source, WatermarkStrategy.noWatermarks(), "datagen")
                .uid("datagen")
                .keyBy(new KeyOf(keys), Types.LONG)
                .process(new Counter(progressFile, failFile, failAfterRecords))
                .uid("counter")
                .name("counter");
        VersionCompat.discard(counted)
                .uid("discard")
                .name("discard");

        env.execute("flink-gitops-counter");
    }

    /** The generator's value is its sequence number. */
    static final class Identity implements GeneratorFunction<Long, Long> {
        private static final long serialVersionUID = 1L;

        @Override
        public Long map(Long index) {
            return index;
        }
    }

    /** Spreads the sequence over a fixed number of keys. */
    static final class KeyOf implements KeySelector<Long, Long> {
        private static final long serialVersionUID = 1L;
        private final long keys;

        KeyOf(long keys) {
            this.keys = keys;
        }

        @Override
        public Long getKey(Long value) {
            return value % keys;
        }
    }

    /** Counts records per key in keyed state and reports the highest count it produced. */
    static final class Counter extends VersionCompat.ProcessFunction<Long, Long, String> {
        private static final long serialVersionUID = 1L;
        private final String progressFile;
        private final String failFile;
        private final long failAfterRecords;
        private transient ValueState<Long> count;
        private transient volatile long highest;
        private transient long lastWrite;
        private transient Path progressPath;
        private transient long processed;
        private transient long lastFailCheck;

        Counter(String progressFile, String failFile, long failAfterRecords) {
            this.progressFile = progressFile;
            this.failFile = failFile;
            this.failAfterRecords = failAfterRecords;
        }

        @Override
        protected void setUp() throws Exception {
            count = getRuntimeContext().getState(new ValueStateDescriptor<>("count", Types.LONG));
            getRuntimeContext().getMetricGroup().gauge(METRIC, (Gauge<Long>) () -> highest);
            if (!progressFile.isEmpty()) {
                int subtask = subtaskIndex();
                progressPath = Paths.get(progressFile + "." + subtask);
            }
        }

        @Override
        public void processElement(Long value, Context ctx, Collector<String> out) throws Exception {
            failIfAsked();
            Long prev = count.value();
            long next = (prev == null ? 0 : prev) + 1;
            count.update(next);
            if (next > highest) {
                highest = next;
            }
            out.collect(ctx.getCurrentKey() + "=" + next);
            long now = System.currentTimeMillis();
            if (progressPath != null && now - lastWrite >= 1000) {
                lastWrite = now;
                writeProgress(highest);
            }
        }

        /** Throws when a failure switch says so (see the class comment). */
        private void failIfAsked() {
            processed++;
            if (failAfterRecords > 0 && processed > failAfterRecords) {
                throw new RuntimeException(
                        "the test job failed on purpose after " + failAfterRecords + " records (--fail-after-records)");
            }
            if (failFile.isEmpty()) {
                return;
            }
            long now = System.currentTimeMillis();
            if (now - lastFailCheck < 100) {
                return;
            }
            lastFailCheck = now;
            if (Files.exists(Paths.get(failFile))) {
                throw new RuntimeException("the test job failed on purpose: " + failFile + " exists (--fail-file)");
            }
        }

        private void writeProgress(long value) throws IOException {
            Path tmp = progressPath.resolveSibling(progressPath.getFileName() + ".tmp");
            Files.write(tmp, (value + "\n").getBytes(StandardCharsets.UTF_8));
            Files.move(tmp, progressPath, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        }
    }
}
