-- Reserved: another branch's migration 0004 lands here at merge (this file is then dropped).
SELECT 1;
