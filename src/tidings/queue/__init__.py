"""The Queue port and its adapters: in-process (local.py, the embedded default) and
RabbitMQ (rabbitmq.py, aio-pika). Jobs reach a queue only through the outbox relay
(services/jobs.py); nothing publishes to it from a request."""
