"""The Kafka broker as the worker sees it: how clients reach it, whether it answers (the probe),
the consumer lag, and Faust's transport with what Faust does not offer."""
