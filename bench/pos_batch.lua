-- wrk script: POS sales batches with fresh sale ids and Idempotency-Keys on every request.
-- Arguments (after --): token store sales_per_batch lines_per_sale
local counter = 0
local thread_tag = ""
local headers = {}
local line_json = ""
local store, sales

function setup(thread)
  thread:set("tag", tostring(math.random(100000, 999999)))
end

function init(args)
  thread_tag = tag .. tostring(os.time() % 100000)
  store = args[2]
  sales = tonumber(args[3])
  local lines = {}
  for i = 1, tonumber(args[4]) do
    lines[i] = '{"sku":"SKU-' .. i .. '","quantity":"2","unit_price":"12.50","discount":"1.00"}'
  end
  line_json = table.concat(lines, ",")
  headers["Authorization"] = "Bearer " .. args[1]
  headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local parts = {}
  for i = 1, sales do
    parts[i] = '{"sale_id":"' .. store .. "-" .. thread_tag .. "-" .. counter .. "-" .. i ..
      '","store_id":"' .. store .. '","occurred_at":"2026-11-24T01:00:00+00:00","lines":[' .. line_json .. ']}'
  end
  headers["Idempotency-Key"] = thread_tag .. "-" .. counter
  return wrk.format("POST", "/v1/pos/sales/batch", headers, '{"sales":[' .. table.concat(parts, ",") .. ']}')
end
