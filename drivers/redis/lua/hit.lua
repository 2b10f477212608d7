-- A sliding-window rate limit on the server's clock (workers' clocks may differ): the hits of the last window
-- are a sorted set scored by time. One more hit is counted if fewer than the limit are in the window; otherwise
-- nothing is counted and the answer is how long until the oldest hit leaves the window.
-- KEYS[1] the limit's set; ARGV[1] the window in milliseconds; ARGV[2] the limit; ARGV[3] a unique member.
-- Returns 0 (counted) or the milliseconds to wait.
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
