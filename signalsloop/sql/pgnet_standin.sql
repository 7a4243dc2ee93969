-- The pg_net stand-in's SQL objects (signalsloop/local/pgnet_standin.py): pg_net
-- 0.20's schema net with its signatures and columns. Installed only by the benchmark
-- and the tests into their own database, never by the migrations.
create schema net;
create domain net.http_method as text check (value ilike 'get' or value ilike 'post' or value ilike 'delete');
create unlogged table net.http_request_queue (
  id bigserial, method net.http_method not null, url text not null, headers jsonb, body bytea,
  timeout_milliseconds int not null);
create unlogged table net._http_response (
  id bigint, status_code integer, content_type text, headers jsonb, content text, timed_out bool,
  error_msg text, created timestamptz not null default now());
create index on net._http_response (created);

-- curl_easy_escape: every byte but ALPHA DIGIT - . _ ~ percent-encoded.
create function net._urlencode_string(string varchar) returns text language sql immutable as $$
  select coalesce(string_agg(case when get_byte(b, i) between 48 and 57 or get_byte(b, i) between 65 and 90
                                     or get_byte(b, i) between 97 and 122 or get_byte(b, i) in (45, 46, 95, 126)
                                  then chr(get_byte(b, i)) else '%' || upper(lpad(to_hex(get_byte(b, i)), 2, '0'))
                             end, '' order by i), '')
    from (select convert_to(string, 'UTF8') as b) s, generate_series(0, octet_length(s.b) - 1) i
$$;
create function net._encode_url_with_params_array(url text, params_array text[]) returns text
language sql immutable strict as $$
  select case when cardinality(params_array) = 0 then url
              else url || case when position('?' in url) > 0 then '&' else '?' end
                       || array_to_string(params_array, '&') end
$$;
create function net.wake() returns void language sql as $$
  select pg_notify('signalsloop_pgnet_standin_wake', '')
$$;

create function net.http_get(url text, params jsonb default '{}'::jsonb, headers jsonb default '{}'::jsonb,
                             timeout_milliseconds int default 5000) returns bigint language plpgsql as $$
declare
  request_id bigint;
  params_array text[];
begin
  select coalesce(array_agg(net._urlencode_string(key) || '=' || net._urlencode_string(value)), '{}')
    into params_array from jsonb_each_text(params);
  insert into net.http_request_queue (method, url, headers, timeout_milliseconds)
  values ('GET', net._encode_url_with_params_array(url, params_array), headers, timeout_milliseconds)
  returning id into request_id;
  perform net.wake();
  return request_id;
end
$$;

create function net.http_post(url text, body jsonb default '{}'::jsonb, params jsonb default '{}'::jsonb,
                              headers jsonb default '{"Content-Type": "application/json"}'::jsonb,
                              timeout_milliseconds int default 5000) returns bigint language plpgsql as $$
declare
  request_id bigint;
  params_array text[];
  content_type text;
begin
  select header_value into content_type
    from jsonb_each_text(coalesce(headers, '{}'::jsonb)) r(header_name, header_value)
   where lower(header_name) = 'content-type' limit 1;
  if content_type is null then
    select headers || '{"Content-Type": "application/json"}'::jsonb into headers;
  end if;
  if content_type <> 'application/json' then
    raise exception 'Content-Type header must be "application/json"';
  end if;
  select coalesce(array_agg(net._urlencode_string(key) || '=' || net._urlencode_string(value)), '{}')
    into params_array from jsonb_each_text(params);
  insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
  values ('POST', net._encode_url_with_params_array(url, params_array), headers,
          convert_to(body::text, 'UTF8'), timeout_milliseconds)
  returning id into request_id;
  perform net.wake();
  return request_id;
end
$$;
grant usage on schema net to public;
grant all on all sequences in schema net to public;
grant all on all tables in schema net to public;
