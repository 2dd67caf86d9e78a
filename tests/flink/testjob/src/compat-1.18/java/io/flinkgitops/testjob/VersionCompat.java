package io.flinkgitops.testjob;

import org.apache.flink.configuration.Configuration;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.DataStreamSink;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.streaming.api.functions.sink.DiscardingSink;

/**
 * The few calls whose API differs between Flink versions, for Flink 1.18 (open takes
 * a Configuration, the subtask index is on the RuntimeContext, and the discarding sink
 * is a SinkFunction). src/compat-current has the 1.19+ forms.
 */
final class VersionCompat {
    private VersionCompat() {}

    /** Ends the stream in a sink that drops every record. */
    static <T> DataStreamSink<T> discard(DataStream<T> in) {
        return in.addSink(new DiscardingSink<>());
    }

    /** A KeyedProcessFunction whose set-up runs in open, whatever open's signature. */
    abstract static class ProcessFunction<K, I, O> extends KeyedProcessFunction<K, I, O> {
        @Override
        public final void open(Configuration parameters) throws Exception {
            setUp();
        }

        /** Runs once per subtask before the first element. */
        protected abstract void setUp() throws Exception;

        /** The index of this parallel subtask. */
        protected final int subtaskIndex() {
            return getRuntimeContext().getIndexOfThisSubtask();
        }
    }
}
