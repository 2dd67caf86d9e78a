package io.flinkgitops.testjob;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.DataStreamSink;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;

/**
 * The few calls whose API differs between Flink versions, for Flink 1.19 and newer
 * (OpenContext, RuntimeContext#getTaskInfo and the Sink V2 DiscardingSink arrived in
 * 1.19; 2.0 removed the older forms). src/compat-1.18 has the 1.18 forms; the build
 * picks one directory with -Dflink.compat.
 */
final class VersionCompat {
    private VersionCompat() {}

    /** Ends the stream in a sink that drops every record. */
    static <T> DataStreamSink<T> discard(DataStream<T> in) {
        return in.sinkTo(new DiscardingSink<>());
    }

    /** A KeyedProcessFunction whose set-up runs in open, whatever open's signature. */
    abstract static class ProcessFunction<K, I, O> extends KeyedProcessFunction<K, I, O> {
        @Override
        public final void open(OpenContext ctx) throws Exception {
            setUp();
        }

        /** Runs once per subtask before the first element. */
        protected abstract void setUp() throws Exception;

        /** The index of this parallel subtask. */
        protected final int subtaskIndex() {
            return getRuntimeContext().getTaskInfo().getIndexOfThisSubtask();
        }
    }
}
