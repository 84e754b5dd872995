"""Adapters of the simulator, implementing the service layer's ports: ``keys`` (platform key pairs
in --keys-dir's platform/, the merchant bundles in its merchant/), ``tables`` (SQLAlchemy Core
tables), ``staging`` (reads now, guarded writes staged for one commit), ``repositories`` /
``delivery_repos`` (domain objects in and out of the tables), ``unit_of_work`` (the SQL unit of
work: one ``Database.write`` per commit), ``notification_client`` (PaymentNotifications/Notify to
the merchant), ``http_notification_client`` (WeChat's HTTPS POST to a notify_url), ``http_tls``
(the HTTP facade's certificate: given, or a throwaway one)."""
