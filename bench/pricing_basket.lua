-- wrk script: baskets of random lines in random stores, priced through the gateway.
-- Arguments (after --): skus stores lines_per_basket; the access token comes from BENCH_TOKEN.
-- SKU n is SKU00001 … SKU05000 and store n S001 … S010, as bench/pricing.py loads them.
local skus, stores, lines
local headers = {}

function setup(thread)
  thread:set("seed", math.random(1, 1000000000))
end

function init(args)
  math.randomseed(seed)
  skus = tonumber(args[1])
  stores = tonumber(args[2])
  lines = tonumber(args[3])
  headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
  headers["Content-Type"] = "application/json"
end

function request()
  local parts = {}
  for i = 1, lines do
    parts[i] = string.format('{"sku":"SKU%05d","quantity":"%d"}', math.random(1, skus), math.random(1, 3))
  end
  local body = string.format('{"store_id":"S%03d","channel":"store","lines":[%s]}', math.random(1, stores),
                             table.concat(parts, ","))
  return wrk.format("POST", "/v1/prices/effective/basket", headers, body)
end
