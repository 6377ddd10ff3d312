"""The Faust app object, and nothing else. Configured from settings when the worker starts."""

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

# A fetch returns once it has this many bytes or waited this long (the Faust default answers every
# fetch as soon as one record is there: a fetch per record or two, each costing as much CPU as the
# records). 100 ms is the most a record waits on a quiet stack.
FETCH_MIN_BYTES = 256 * 1024
FETCH_MAX_WAIT_MS = 100


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_min_bytes = FETCH_MIN_BYTES  # read by start(), which builds the fetcher
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class TrackerApp(faust.App):
    def _new_transport(self):
        return _Transport(self.conf.broker_consumer, self)


app = TrackerApp(
    "mailstream-tracker",
    origin="mailstream.tracker",
    autodiscover=["mailstream.tracker.agents"],
    web_enabled=False,
    store="memory://",
)
