"""The platform hooks. The default connection ids live here, so operators and DAG files can name them
without importing a hook (and ``requests``) at parse time."""

LAZADA_CONN_ID = "lazada_default"
HUAWEI_VOD_CONN_ID = "huawei_vod_default"
SHOPEE_CONN_ID = "shopee_default"
