"""The simulated WeChat Pay's business rules. Pure: no database, grpc or generated code.

- ``merchants``: whom a request acts for: a direct-mode merchant (its own mchid and keys) or a
  partner-mode sub-merchant under the service provider (sp_mchid + sub_mchid).
- ``payments``: payment orders, trade states NOTPAY/SUCCESS/CLOSED/REFUND and their transitions.
- ``refunds``: refunds, statuses PROCESSING/SUCCESS/CLOSED/ABNORMAL and their transitions.
- ``notifications``: WeChat's resource documents and the delivery record on the retry schedule.
- ``messages``: template messages. ``validation``, ``times``, ``ids``: WeChat's input rules,
  RFC 3339 times in +08:00, WeChat-shaped ids.
"""
