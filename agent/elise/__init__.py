"""The Elise provider adapter: one async client, typed outcomes, no secrets in logs.

`client.EliseClient` makes the calls, `auth` holds the API-key and bearer schemes,
`requests` builds the signpos body, `responses` turns an HTTP answer into an `outcomes` value.
"""
