"""The consumer toolkit every broker of ours builds on: one consume loop (pause check, take what the worker can
hold, back off while the server is away, give back what was never started), the jobs a worker holds, paused
queues, poison messages and send deadlines. It knows TaskIQ and the base layer, no broker library."""
